{= header =}
// Self-checking testbench (Icarus, or any Verilog simulator): resets the device, programs
// SEQ_LEN/SEQ_COUNT over AXI4-Lite, streams tb_input.hex and compares every output word with
// tb_expected.hex from the bit-exact golden model. Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_tb;
    localparam integer NIN = {= nin =};
    localparam integer NOUT = {= nout =};
    reg clk = 1'b0;
    always #5 clk = !clk;
    reg rst_n = 1'b0;
    reg [11:0] awaddr = 12'd0, araddr = 12'd0;
    reg [31:0] wdata = 32'd0;
    reg awvalid = 1'b0, wvalid = 1'b0, bready = 1'b0, arvalid = 1'b0, rready = 1'b0;
    wire awready, wready, bvalid, arready, rvalid;
    wire [1:0] bresp, rresp;
    wire [31:0] rdata;
    reg go = 1'b0;
    integer xi = 0, yi = 0, errors = 0, cycles = 0;
    reg [{= axis_w =}-1:0] xin [0:NIN-1];
    reg [{= axis_w =}-1:0] yexp [0:NOUT-1];
    wire s_tvalid = go && (xi < NIN);
    wire [{= axis_w =}-1:0] s_tdata = s_tvalid ? xin[xi] : {= axis_w =}'d0;
    wire s_tready, m_tvalid, m_tlast;
    wire [{= axis_w =}-1:0] m_tdata;
    partita_top dut (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(awaddr), .s_axil_awvalid(awvalid), .s_axil_awready(awready),
        .s_axil_wdata(wdata), .s_axil_wstrb(4'hf), .s_axil_wvalid(wvalid), .s_axil_wready(wready),
        .s_axil_bresp(bresp), .s_axil_bvalid(bvalid), .s_axil_bready(bready),
        .s_axil_araddr(araddr), .s_axil_arvalid(arvalid), .s_axil_arready(arready),
        .s_axil_rdata(rdata), .s_axil_rresp(rresp), .s_axil_rvalid(rvalid), .s_axil_rready(rready),
        .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready), .s_axis_tlast(1'b0),
        .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tready(1'b1), .m_axis_tlast(m_tlast)
    );
    always @(posedge clk) begin
        cycles <= cycles + 1;
        if (s_tvalid && s_tready) xi <= xi + 1;
        if (m_tvalid) begin
            if (m_tdata !== yexp[yi] || m_tlast !== ((yi % {= hidden =}) == {= hidden =} - 1)) begin
                if (errors == 0)
                    $display("FAIL: word %0d: expected %h, got %h (tlast %b)", yi, yexp[yi], m_tdata, m_tlast);
                errors <= errors + 1;
            end
            yi <= yi + 1;
        end
    end
    task axil_write(input [11:0] a, input [31:0] d);
        begin
            awaddr <= a;
            wdata <= d;
            awvalid <= 1'b1;
            wvalid <= 1'b1;
            @(negedge clk);
            while (!(awready && wready)) @(negedge clk);
            @(posedge clk);
            awvalid <= 1'b0;
            wvalid <= 1'b0;
            bready <= 1'b1;
            @(negedge clk);
            while (!bvalid) @(negedge clk);
            @(posedge clk);
            bready <= 1'b0;
        end
    endtask
    initial begin
        $readmemh("tb_input.hex", xin);
        $readmemh("tb_expected.hex", yexp);
        repeat (4) @(posedge clk);
        rst_n <= 1'b1;
        @(posedge clk);
        axil_write(12'h018, {= seq_len =});
        axil_write(12'h01C, {= seq_count =});
        go <= 1'b1;
        axil_write(12'h010, 32'd1);
        while (yi < NOUT && cycles < {= timeout =}) @(posedge clk);
        if (yi < NOUT) $display("FAIL: %0d of %0d words after %0d cycles", yi, NOUT, cycles);
        else if (errors == 0) $display("PASS: %0d words match the golden model", NOUT);
        else $display("FAIL: %0d of %0d words differ", errors, NOUT);
        $finish;
    end
    wire unused_tb = &{1'b0, bresp, rresp, rdata, arready, rvalid, araddr, arvalid, rready};
endmodule

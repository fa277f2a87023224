{= header =}
// Self-checking testbench (Icarus, Verilator --timing, or any Verilog simulator): resets the
// device, programs SEQ_LEN and SEQ_COUNT over AXI4-Lite, streams the beats of tb_input.hex and
// compares every output beat (tdata, tkeep and tlast) with tb_expected.hex from the bit-exact
// golden model. Each line of both files is one beat: {tlast, tkeep, tdata}.
// Prints PASS or FAIL. Inputs change on the falling edge; the device samples on the rising one.
module partita_tb;
    localparam integer NIN = {= nin =};
    localparam integer NOUT = {= nout =};
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst_n = 1'b0;
    reg [11:0] awaddr = 12'd0, araddr = 12'd0;
    reg [31:0] wdata = 32'd0;
    reg awvalid = 1'b0, wvalid = 1'b0, bready = 1'b0, arvalid = 1'b0, rready = 1'b0;
    wire awready, wready, bvalid, arready, rvalid;
    wire [1:0] bresp, rresp;
    wire [31:0] rdata;
    reg go = 1'b0;
    integer xi = 0, yi = 0, errors = 0, cycles = 0;
    reg [{= beat_w =}-1:0] xin [0:NIN-1];
    reg [{= obeat_w =}-1:0] yexp [0:NOUT-1];
    reg s_tvalid = 1'b0;
    reg [{= beat_w =}-1:0] s_beat = {= beat_w =}'d0;
    wire s_tready, m_tvalid, m_tlast;
    wire [{= osb =}-1:0] m_tdata;
    wire [{= okw =}-1:0] m_tkeep;
    wire [{= obeat_w =}-1:0] m_beat = {m_tlast, m_tkeep, m_tdata};
    {= top =} dut (
        .clk(clk), .rst_n(rst_n),
        .s_axil_awaddr(awaddr), .s_axil_awvalid(awvalid), .s_axil_awready(awready),
        .s_axil_wdata(wdata), .s_axil_wstrb(4'hf), .s_axil_wvalid(wvalid), .s_axil_wready(wready),
        .s_axil_bresp(bresp), .s_axil_bvalid(bvalid), .s_axil_bready(bready),
        .s_axil_araddr(araddr), .s_axil_arvalid(arvalid), .s_axil_arready(arready),
        .s_axil_rdata(rdata), .s_axil_rresp(rresp), .s_axil_rvalid(rvalid), .s_axil_rready(rready),
        .s_axis_tdata(s_beat[{= sb =}-1:0]), .s_axis_tkeep(s_beat[{= keep_hi =}:{= sb =}]), .s_axis_tvalid(s_tvalid),
        .s_axis_tready(s_tready), .s_axis_tlast(s_beat[{= keep_hi_plus1 =}]),
        .m_axis_tdata(m_tdata), .m_axis_tkeep(m_tkeep), .m_axis_tvalid(m_tvalid), .m_axis_tready(1'b1),
        .m_axis_tlast(m_tlast)
    );
    // Streams: offer the next x beat, and check the output beat the coming edge takes.
    initial forever begin
        @(negedge clk);
        s_tvalid = go && (xi < NIN);
        s_beat = xin[xi < NIN ? xi : 0];
        #1;
        cycles = cycles + 1;
        if (s_tvalid && s_tready) xi = xi + 1;
        if (m_tvalid) begin
            if (yi >= NOUT || m_beat !== yexp[yi < NOUT ? yi : 0]) begin
                if (errors == 0)
                    $display("FAIL: beat %0d: expected %h, got %h ({tlast, tkeep, tdata})", yi, yexp[yi < NOUT ? yi : 0], m_beat);
                errors = errors + 1;
            end
            yi = yi + 1;
        end
    end
    task axil_write(input [11:0] a, input [31:0] d);
        begin
            @(negedge clk);
            awaddr = a;
            wdata = d;
            awvalid = 1'b1;
            wvalid = 1'b1;
            #1;
            while (!(awready && wready)) begin
                @(negedge clk);
                #1;
            end
            @(negedge clk);
            awvalid = 1'b0;
            wvalid = 1'b0;
            bready = 1'b1;
            #1;
            while (!bvalid) begin
                @(negedge clk);
                #1;
            end
            @(negedge clk);
            bready = 1'b0;
        end
    endtask
    initial begin
        $readmemh("tb_input.hex", xin);
        $readmemh("tb_expected.hex", yexp);
        repeat (4) @(negedge clk);
        rst_n = 1'b1;
        axil_write({= seq_len_addr =}, {= seq_len =});
        axil_write({= seq_count_addr =}, {= seq_count =});
        go = 1'b1;
        axil_write({= ctrl_addr =}, 32'd1);
        while (yi < NOUT && cycles < {= timeout =}) @(negedge clk);
        if (yi < NOUT) $display("FAIL: %0d of %0d beats after %0d cycles", yi, NOUT, cycles);
        else if (errors == 0) $display("PASS: %0d beats match the golden model", NOUT);
        else $display("FAIL: %0d of %0d beats differ", errors, NOUT);
        $finish;
    end
    wire unused_tb = &{1'b0, bresp, rresp, rdata, arready, rvalid, araddr, arvalid, rready};
endmodule

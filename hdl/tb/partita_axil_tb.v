// Self-checking testbench of partita_axil with a small decode (clocked, as the core expects):
// word 1 read-write, word 2 a read-only constant, word 3 a command accepted only while idle,
// everything else unmapped.
// Checks responses (OKAY / SLVERR), read data, that refused reads and writes both count in
// err_count and set err_flag, that clr_err clears them, that a response waits for its ready,
// that the write address and data may come in different cycles, and that a read and a write
// in the same cycle are both served (the read a cycle after the write: its decode has two
// cycles). Prints PASS or FAIL.
`timescale 1ns / 1ps
module partita_axil_tb;
    reg clk = 1'b0;
    initial forever #5 clk = !clk;
    reg rst_n = 1'b0;
    reg [11:0] awaddr = 12'd0, araddr = 12'd0;
    reg [31:0] wdata = 32'd0;
    reg awvalid = 1'b0, wvalid = 1'b0, bready = 1'b0, arvalid = 1'b0, rready = 1'b0;
    wire awready, wready, bvalid, arready, rvalid;
    wire [1:0] bresp, rresp;
    wire [31:0] rdata;
    wire we, re;
    wire [9:0] waddr, raddr;
    wire [31:0] wd;
    wire [31:0] err_count;
    wire err_flag;
    reg clr_err = 1'b0, busy = 1'b0;
    reg [31:0] reg_a = 32'd0;
    reg cmd = 1'b0;
    // The decode answers in its clocked process, at the edge that takes the access.
    reg wok = 1'b0, rok = 1'b0;
    reg [31:0] rd = 32'd0;
    always @(posedge clk) begin
        cmd <= we && waddr == 10'd3 && !busy;
        if (we) begin
            wok <= (waddr == 10'd1) || (waddr == 10'd3 && !busy);
            if (waddr == 10'd1) reg_a <= wd;
        end
        if (re) begin
            rok <= (raddr == 10'd1) || (raddr == 10'd2);
            rd <= (raddr == 10'd1) ? reg_a : 32'h12345678;
        end
    end
    partita_axil dut (
        .clk(clk), .rst_n(rst_n), .s_axil_awaddr(awaddr), .s_axil_awvalid(awvalid),
        .s_axil_awready(awready), .s_axil_wdata(wdata), .s_axil_wstrb(4'hf),
        .s_axil_wvalid(wvalid), .s_axil_wready(wready), .s_axil_bresp(bresp),
        .s_axil_bvalid(bvalid), .s_axil_bready(bready), .s_axil_araddr(araddr),
        .s_axil_arvalid(arvalid), .s_axil_arready(arready), .s_axil_rdata(rdata),
        .s_axil_rresp(rresp), .s_axil_rvalid(rvalid), .s_axil_rready(rready), .we(we),
        .waddr(waddr), .wdata(wd), .wok(wok), .re(re), .raddr(raddr), .rdata_in(rd),
        .rok(rok), .clr_err(clr_err), .err_count(err_count), .err_flag(err_flag)
    );
    integer errors = 0, cmds = 0, k;
    always @(posedge clk) if (cmd) cmds <= cmds + 1;
    task check(input cond, input [8*32-1:0] what);
        begin
            if (!cond) begin
                if (errors < 5) $display("FAIL: %0s", what);
                errors = errors + 1;
            end
        end
    endtask
    // Write: address and data together; the response is held `wait_b` cycles before bready.
    task axi_write(input [11:0] a, input [31:0] d, input [1:0] resp, input integer wait_b);
        begin
            @(negedge clk);
            awaddr = a; wdata = d; awvalid = 1'b1; wvalid = 1'b1;
            #1;
            while (!(awready && wready)) begin @(negedge clk); #1; end
            @(negedge clk);
            awvalid = 1'b0; wvalid = 1'b0;
            #1;
            while (!bvalid) begin @(negedge clk); #1; end
            for (k = 0; k < wait_b; k = k + 1) begin
                @(negedge clk);
                #1;
                check(bvalid && !awready, "write response held");
            end
            check(bresp == resp, "write response code");
            bready = 1'b1;
            @(negedge clk);
            bready = 1'b0;
        end
    endtask
    task axi_read(input [11:0] a, input [31:0] d, input [1:0] resp, input integer wait_r);
        begin
            @(negedge clk);
            araddr = a; arvalid = 1'b1;
            #1;
            while (!arready) begin @(negedge clk); #1; end
            @(negedge clk);
            arvalid = 1'b0;
            #1;
            while (!rvalid) begin @(negedge clk); #1; end
            for (k = 0; k < wait_r; k = k + 1) begin
                @(negedge clk);
                #1;
                check(rvalid && !arready, "read data held");
            end
            check(rresp == resp && rdata == d, "read data and code");
            rready = 1'b1;
            @(negedge clk);
            rready = 1'b0;
        end
    endtask
    // Watchdog: a handshake that never comes is a failure, not a hang.
    initial begin
        #200000;
        $display("FAIL: timeout");
        $finish;
    end
    initial begin
        repeat (3) @(negedge clk);
        rst_n = 1'b1;
        axi_write(12'h004, 32'hcafe0001, 2'b00, 0);
        axi_read(12'h004, 32'hcafe0001, 2'b00, 0);
        // The readies are registers, high while idle: address first, data two cycles later.
        @(negedge clk);
        #1;
        check(awready && wready && arready, "readies high while idle");
        awaddr = 12'h004; awvalid = 1'b1;
        @(negedge clk);
        awvalid = 1'b0;
        #1;
        check(!awready && wready && !bvalid, "address taken, data awaited");
        @(negedge clk);
        wdata = 32'hcafe0002; wvalid = 1'b1;
        @(negedge clk);
        wvalid = 1'b0;
        #1;
        check(!wready && !bvalid, "data taken");
        while (!bvalid) begin @(negedge clk); #1; end
        check(bresp == 2'b00, "split write answered OKAY");
        bready = 1'b1;
        @(negedge clk);
        bready = 1'b0;
        axi_read(12'h004, 32'hcafe0002, 2'b00, 0);
        axi_read(12'h008, 32'h12345678, 2'b00, 3);
        check(err_count == 0 && !err_flag, "no errors yet");
        axi_read(12'h100, 32'd0, 2'b10, 0);
        check(err_count == 1 && err_flag, "refused read counted");
        axi_write(12'h008, 32'd5, 2'b10, 2);
        check(err_count == 2, "refused write counted");
        axi_write(12'h00C, 32'd1, 2'b00, 0);
        busy = 1'b1;
        axi_write(12'h00C, 32'd1, 2'b10, 0);
        busy = 1'b0;
        check(err_count == 3 && cmds == 1, "command refused while busy");
        // A read and a write at once: the write answered two cycles after the edge that took
        // them (the request register, then the decode), the read two cycles later (the decode
        // has three cycles).
        @(negedge clk);
        awaddr = 12'h004; wdata = 32'h00000077; awvalid = 1'b1; wvalid = 1'b1;
        araddr = 12'h3FC; arvalid = 1'b1;
        #1;
        check(awready && arready, "read and write taken together");
        @(negedge clk);
        awvalid = 1'b0; wvalid = 1'b0; arvalid = 1'b0;
        @(negedge clk);
        #1;
        check(!bvalid && !rvalid, "not answered before the decode");
        @(negedge clk);
        #1;
        check(bvalid && bresp == 2'b00 && !rvalid, "write answered first");
        @(negedge clk);
        #1;
        check(bvalid && !rvalid, "read still in its decode");
        @(negedge clk);
        #1;
        check(bvalid && rvalid && rresp == 2'b10, "read answered two cycles later");
        bready = 1'b1; rready = 1'b1;
        @(negedge clk);
        bready = 1'b0; rready = 1'b0;
        check(err_count == 4 && reg_a == 32'h77, "both served");
        clr_err = 1'b1;
        @(negedge clk);
        clr_err = 1'b0;
        check(err_count == 0 && !err_flag, "cleared");
        axi_read(12'h004, 32'h00000077, 2'b00, 1);
        if (errors == 0) $display("PASS: AXI4-Lite responses, data and error counts");
        else $display("FAIL: %0d checks failed", errors);
        $finish;
    end
    wire unused_tb = &{1'b0, re};
endmodule

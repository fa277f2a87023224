// partita library core: AXI4-Stream skid buffer (register slice). Registers tdata, tlast and
// tvalid towards the sink and s_tready towards the source, so neither the data path nor the
// ready path crosses it combinationally. Full throughput: a beat per cycle while the sink is
// ready; when the sink stalls, one beat waits in the skid register. s_tready is low during
// reset, so no beat offered then is taken and lost. The data registers load whenever they
// are free, valid beat or not (their valid flags say which): so their enables follow only this
// slice's own flip-flops and the sink's ready, never the source's tvalid, which may come
// through logic from across the die; only the valid flags wait on it.
`timescale 1ns / 1ps
module partita_skid #(
    parameter integer W = 8
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] s_tdata,
    input  wire         s_tvalid,
    output wire         s_tready,
    input  wire         s_tlast,
    output wire [W-1:0] m_tdata,
    output wire         m_tvalid,
    input  wire         m_tready,
    output wire         m_tlast
);
    reg [W:0] main_d, skid_d;
    reg main_v, skid_v, rdy;
    assign s_tready = rdy;
    assign m_tvalid = main_v;
    assign m_tdata = main_d[W-1:0];
    assign m_tlast = main_d[W];
    always @(posedge clk) begin
        if (rst) begin
            main_v <= 1'b0;
            skid_v <= 1'b0;
            rdy <= 1'b0;
        end else if (!rdy) begin
            // Held off (a beat waits in skid, or reset just ended): the waiting beat moves up
            // when the sink takes main.
            if (m_tready || !skid_v) begin
                if (skid_v) main_d <= skid_d;
                skid_v <= 1'b0;
                rdy <= 1'b1;
            end
        end else if (!main_v || m_tready) begin
            main_v <= s_tvalid;
            main_d <= {s_tlast, s_tdata};
        end else begin
            skid_d <= {s_tlast, s_tdata};
            if (s_tvalid) begin
                skid_v <= 1'b1;
                rdy <= 1'b0;
            end
        end
    end
endmodule

// partita library core: a stream FIFO on block RAM. DEPTH = 2^AW entries in a memory with a
// registered read (it maps to block RAM), then a two-entry output queue, so the head is a
// register (m_data, m_valid) and a value can enter and one leave every cycle. A read is issued
// when the memory holds a value and the queue, with the read in flight, will have room for it
// a cycle later. s_ready is high while the memory is not full (a compare of a register).
`timescale 1ns / 1ps
module partita_sfifo #(
    parameter integer W = 16,
    parameter integer AW = 9,
    parameter integer DEPTH = 512
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] s_data,
    input  wire         s_valid,
    output wire         s_ready,
    output wire [W-1:0] m_data,
    output wire         m_valid,
    input  wire         m_ready
);
    localparam [AW:0] FULL = DEPTH[AW:0];
    localparam [AW:0] CNT_ONE = 1;
    localparam [AW-1:0] PTR_ONE = 1;
    reg [W-1:0] mem [0:DEPTH-1];
    reg [AW-1:0] wp, rp;
    reg [AW:0] cnt;
    reg [W-1:0] rd, q0, q1;
    reg rdv, v0, v1;
    wire push = s_valid && s_ready;
    wire take = v0 && m_ready;
    assign s_ready = (cnt != FULL);
    assign m_data = q0;
    assign m_valid = v0;
    // Queue entries after this cycle, counting the read in flight: a new read lands a cycle
    // after it, so it may start while that count is below two.
    wire [1:0] occ = {1'b0, v0} + {1'b0, v1} + {1'b0, rdv} - {1'b0, take};
    wire rden = (cnt != {(AW + 1){1'b0}}) && (occ < 2'd2);
    always @(posedge clk) begin
        if (push) mem[wp] <= s_data;
        if (rden) rd <= mem[rp];
    end
    always @(posedge clk) begin
        if (rst) begin
            wp <= {AW{1'b0}};
            rp <= {AW{1'b0}};
            cnt <= {(AW + 1){1'b0}};
            rdv <= 1'b0;
            v0 <= 1'b0;
            v1 <= 1'b0;
        end else begin
            if (push) wp <= wp + PTR_ONE;
            if (rden) rp <= rp + PTR_ONE;
            if (push && !rden) cnt <= cnt + CNT_ONE;
            else if (rden && !push) cnt <= cnt - CNT_ONE;
            rdv <= rden;
            if (take) begin
                if (v1) begin
                    q0 <= q1;
                    v1 <= rdv;
                    if (rdv) q1 <= rd;
                end else begin
                    v0 <= rdv;
                    if (rdv) q0 <= rd;
                end
            end else if (rdv) begin
                if (v0) begin
                    q1 <= rd;
                    v1 <= 1'b1;
                end else begin
                    q0 <= rd;
                    v0 <= 1'b1;
                end
            end
        end
    end
endmodule

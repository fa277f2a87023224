// partita library core: AXI4-Stream packer. Takes one value per cycle (v_last on a vector's
// last value) and sends packed beats through a register slice (partita_skid), in the layout of
// partita_hdl::stream: P slots of VB bits per SB-bit beat, slot 0 in the least significant
// bits; a vector starts on a new beat, and its last beat has tlast and tkeep low for the
// bytes of empty slots (and for bytes above the last slot), which are zero. Full throughput:
// a value per cycle while the sink takes a beat every P cycles. `busy` is low once every
// value taken has left on the stream. The values enter through a register slice too, so
// `v_ready` is a flip-flop: the packer's ready (which depends on the value's last flag) never
// reaches back into the source (a FIFO's read address, say) in the same cycle.
`timescale 1ns / 1ps
module partita_pack #(
    parameter integer SB = 64,
    parameter integer VB = 16,
    parameter integer P = 4,
    // Bits of a slot index (holds P - 1).
    parameter integer JW = 2
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [VB-1:0]   v_data,
    input  wire            v_valid,
    output wire            v_ready,
    input  wire            v_last,
    output wire [SB-1:0]   m_tdata,
    output wire [SB/8-1:0] m_tkeep,
    output wire            m_tvalid,
    input  wire            m_tready,
    output wire            m_tlast,
    // A value or beat is still inside (a partly filled beat, or one not yet taken by the sink).
    output wire            busy
);
    localparam integer KW = SB / 8;
    localparam integer SK = VB / 8;
    localparam integer P_LAST_I = P - 1;
    localparam [JW-1:0] P_LAST = P_LAST_I[JW-1:0];

    // The input slice.
    wire [VB-1:0] i_data;
    wire i_valid, i_ready, i_last;
    partita_skid #(.W(VB)) u_in (
        .clk(clk), .rst(rst), .s_tdata(v_data), .s_tvalid(v_valid), .s_tready(v_ready),
        .s_tlast(v_last), .m_tdata(i_data), .m_tvalid(i_valid), .m_tready(i_ready),
        .m_tlast(i_last)
    );
    reg  [SB-1:0] asm_d;
    reg  [JW-1:0] j;
    reg  [SB-1:0] ob;
    reg  [KW-1:0] okeep;
    reg  ov, olast;
    wire o_ready;
    wire closing = i_last || (j == P_LAST);
    assign i_ready = !closing || !ov || o_ready;
    wire take = i_valid && i_ready;
    assign busy = i_valid || ov || (j != {JW{1'b0}}) || m_tvalid;
    // The beat being closed: the assembled slots and this value in slot j.
    reg [SB-1:0] beat;
    reg [KW-1:0] keep;
    integer k;
    always @* begin
        beat = asm_d;
        keep = {KW{1'b0}};
        for (k = 0; k < P; k = k + 1) begin
            if (k[JW-1:0] == j) beat[k*VB +: VB] = i_data;
            if (k[JW-1:0] <= j) keep[k*SK +: SK] = {SK{1'b1}};
        end
    end
    always @(posedge clk) begin
        if (rst) begin
            j <= {JW{1'b0}};
            ov <= 1'b0;
            asm_d <= {SB{1'b0}};
        end else begin
            if (o_ready) ov <= 1'b0;
            if (take) begin
                if (closing) begin
                    j <= {JW{1'b0}};
                    asm_d <= {SB{1'b0}};
                    ov <= 1'b1;
                end else begin
                    j <= j + {{(JW-1){1'b0}}, 1'b1};
                    asm_d <= beat;
                end
            end
        end
        if (take && closing) begin
            ob <= beat;
            okeep <= keep;
            olast <= i_last;
        end
    end
    partita_skid #(.W(SB + KW)) u_slice (
        .clk(clk), .rst(rst), .s_tdata({okeep, ob}), .s_tvalid(ov), .s_tready(o_ready),
        .s_tlast(olast), .m_tdata({m_tkeep, m_tdata}), .m_tvalid(m_tvalid),
        .m_tready(m_tready), .m_tlast(m_tlast)
    );
endmodule

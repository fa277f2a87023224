// partita library core: AXI4-Stream packer. Takes one word of R values per cycle (v_cnt of
// them used, slot 0 in the low bits; only a vector's last word may be short; v_last on a
// vector's last word; R divides P) and sends packed beats through a register slice (partita_skid), in the layout of
// partita_hdl::stream: P slots of VB bits per SB-bit beat, slot 0 in the least significant
// bits; a vector starts on a new beat, and its last beat has tlast and tkeep low for the
// bytes of empty slots (and for bytes above the last slot), which are zero. Full throughput:
// a word per cycle while the sink takes a beat every P / R cycles. `busy` is low once every
// value taken has left on the stream. The values enter through a register slice too, so
// `v_ready` is a flip-flop: the packer's ready (which depends on the value's last flag) never
// reaches back into the source (a FIFO's read address, say) in the same cycle.
`timescale 1ns / 1ps
module partita_pack #(
    parameter integer SB = 64,
    parameter integer VB = 16,
    parameter integer P = 4,
    // Values per input word (divides P), and bits of v_cnt (holds R).
    parameter integer R = 1,
    parameter integer CW = 1,
    // Bits of a word's index in a beat (holds P / R - 1).
    parameter integer JW = 2
) (
    input  wire            clk,
    input  wire            rst,
    input  wire [R*VB-1:0] v_data,
    input  wire [CW-1:0]   v_cnt,
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
    localparam integer PW = P / R;
    localparam integer P_LAST_I = PW - 1;
    localparam [JW-1:0] P_LAST = P_LAST_I[JW-1:0];

    // The input slice.
    wire [R*VB-1:0] i_data;
    wire [CW-1:0] i_cnt;
    wire i_valid, i_ready, i_last;
    partita_skid #(.W(R * VB + CW)) u_in (
        .clk(clk), .rst(rst), .s_tdata({v_cnt, v_data}), .s_tvalid(v_valid), .s_tready(v_ready),
        .s_tlast(v_last), .m_tdata({i_cnt, i_data}), .m_tvalid(i_valid), .m_tready(i_ready),
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
    // The beat being closed: the assembled words and this word at word j (its first v_cnt
    // slots kept).
    reg [SB-1:0] beat;
    reg [KW-1:0] keep;
    integer k, q;
    always @* begin
        beat = asm_d;
        keep = {KW{1'b0}};
        for (k = 0; k < PW; k = k + 1) begin
            if (k[JW-1:0] == j) beat[k*R*VB +: R*VB] = i_data;
            for (q = 0; q < R; q = q + 1)
                if (k[JW-1:0] < j || (k[JW-1:0] == j && q < {{(32-CW){1'b0}}, i_cnt}))
                    keep[(k*R+q)*SK +: SK] = {SK{1'b1}};
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

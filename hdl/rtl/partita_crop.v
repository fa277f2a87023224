// partita library core: passes the values of a box of a map and drops the rest. The input is a
// map of H x W pixels of C channels per frame, in raster order (each pixel's channels in
// order); a value passes when its row lies in Y0..Y1, its column in X0..X1 and its channel in
// C0..C1 (first and last, inclusive), and is taken and dropped otherwise. This is how a device
// takes its part of a map every device of a stack holds whole (a stack on the devices of the
// tiled stack before it: its channels, or its tile with the halo its windows read).
// Valid/ready throughout, no register on the data path; whether the next value is in the box
// is registered (one flag per axis, updated as its counter steps), so no comparison is on the
// handshake path.
`timescale 1ns / 1ps
module partita_crop #(
    parameter integer DW = 16,
    parameter integer H = 4,
    parameter integer W = 5,
    parameter integer C = 3,
    parameter integer YW = 2,               // holds H - 1
    parameter integer XW = 3,               // holds W - 1
    parameter integer CW = 2,               // holds C - 1
    parameter integer Y0 = 1,
    parameter integer Y1 = 2,
    parameter integer X0 = 0,
    parameter integer X1 = 3,
    parameter integer C0 = 1,
    parameter integer C1 = 2
) (
    input  wire          clk,
    input  wire          rst,
    input  wire [DW-1:0] s_data,
    input  wire          s_valid,
    output wire          s_ready,
    output wire [DW-1:0] m_data,
    output wire          m_valid,
    input  wire          m_ready
);
    localparam integer HL = H - 1;
    localparam integer WL = W - 1;
    localparam integer CL = C - 1;
    localparam [YW-1:0] Y_LAST = HL[YW-1:0];
    localparam [XW-1:0] X_LAST = WL[XW-1:0];
    localparam [CW-1:0] C_LAST = CL[CW-1:0];
    localparam [YW-1:0] Y_FIRST = Y0[YW-1:0];
    localparam [YW-1:0] Y_END = Y1[YW-1:0];
    localparam [XW-1:0] X_FIRST = X0[XW-1:0];
    localparam [XW-1:0] X_END = X1[XW-1:0];
    localparam [CW-1:0] C_FIRST = C0[CW-1:0];
    localparam [CW-1:0] C_END = C1[CW-1:0];
    localparam IN_Y0 = (Y0 == 0);
    localparam IN_X0 = (X0 == 0);
    localparam IN_C0 = (C0 == 0);
    reg [YW-1:0] y;
    reg [XW-1:0] x;
    reg [CW-1:0] c;
    reg in_y, in_x, in_c;
    wire in_box = in_y && in_x && in_c;
    wire take = s_valid && s_ready;
    assign m_data = s_data;
    assign m_valid = s_valid && in_box;
    assign s_ready = m_ready || !in_box;
    // An axis's flag for its counter's next value: set on the box's first, cleared after its
    // last, reset when the counter wraps.
    wire c_wrap = (c == C_LAST);
    wire x_wrap = (x == X_LAST);
    wire y_wrap = (y == Y_LAST);
    wire [CW-1:0] c_next = c + 1'b1;
    wire [XW-1:0] x_next = x + 1'b1;
    wire [YW-1:0] y_next = y + 1'b1;
    always @(posedge clk) begin
        if (rst) begin
            y <= {YW{1'b0}};
            x <= {XW{1'b0}};
            c <= {CW{1'b0}};
            in_y <= IN_Y0;
            in_x <= IN_X0;
            in_c <= IN_C0;
        end else if (take) begin
            if (c_wrap) begin
                c <= {CW{1'b0}};
                in_c <= IN_C0;
                if (x_wrap) begin
                    x <= {XW{1'b0}};
                    in_x <= IN_X0;
                    if (y_wrap) begin
                        y <= {YW{1'b0}};
                        in_y <= IN_Y0;
                    end else begin
                        y <= y_next;
                        in_y <= (y_next == Y_FIRST) || (in_y && (y != Y_END));
                    end
                end else begin
                    x <= x_next;
                    in_x <= (x_next == X_FIRST) || (in_x && (x != X_END));
                end
            end else begin
                c <= c_next;
                in_c <= (c_next == C_FIRST) || (in_c && (c != C_END));
            end
        end
    end
endmodule

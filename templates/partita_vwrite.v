{= header =}
// The vector memories' write port: every lane's memory takes one value per cycle, from (in
// priority order) this device's new h values, the h values arriving on each link port, or the
// x stream. Each value goes to its home: unit u of a layer's h at lane u / {= bh =}, index
// u mod {= bh =} of the tick-parity buffer its frame names; x of a timestep into the x buffer of
// its tick's parity. The x loader runs up to one tick ahead of the controller.
module {= name =} (
    input  wire                   clk,
    input  wire                   rst,
    input  wire                   start,
    input  wire                   busy,
    input  wire                   tick,      // the controller's tick count advances
    input  wire [31:0]            seq_len,
    input  wire [31:0]            seq_count,
    // This device's h values (h_out), written to lane/index from the finishing unit on.
    input  wire                   h_out,
    input  wire                   h_need,
    input  wire                   fwait,
    input  wire [{= lane_w =}-1:0]  flane,
    input  wire [{= vaw =}-1:0]     fidx,
    input  wire [{= vaw =}-1:0]     hbase_wr,
    input  wire [{= dw =}-1:0]      h,
    // Received h values, per port: valid, source, layer, buffer parity, value.
    input  wire [{= nports =}-1:0]    rv_h,
    input  wire [{= src_bits =}-1:0]   rv_src,
    input  wire [{= layer_bits =}-1:0] rv_layer,
    input  wire [{= nports =}-1:0]    rv_par,
    input  wire [{= data_bits =}-1:0] rv_data,
    output wire [{= nports =}-1:0]    rv_take,
    // The x stream.
    input  wire [{= vb =}-1:0]    s_axis_tdata,
    input  wire                   s_axis_tvalid,
    output wire                   s_axis_tready,
    output wire                   x_ready,
    // The write port.
    output reg                    vw_en,
    output reg  [{= lane_w =}-1:0]  vw_lane,
    output reg  [{= vaw =}-1:0]     vw_addr,
    output reg  [{= dw =}-1:0]      vw_data
);
    // Local h: lane and index of the next unit this device finishes.
    reg [{= lane_w =}-1:0] lh_lane;
    reg [{= vaw =}-1:0] lh_idx;
    wire lh_req = h_out && h_need;
    always @(posedge clk) begin
        if (rst || fwait) begin
            lh_lane <= flane;
            lh_idx <= fidx;
        end else if (h_out) begin
            if (lh_idx == {= vaw =}'d{= bh_last =}) begin
                lh_idx <= {= vaw =}'d0;
                lh_lane <= lh_lane + {= lane_w =}'d1;
            end else begin
                lh_idx <= lh_idx + {= vaw =}'d1;
            end
        end
    end

    // Received h: where the next value from each device goes. hstart(s, layer) is the start
    // {lane, index, count} of device s's h run of that layer.
    function [{= hstart_w =}-1:0] hstart(input [2:0] s, input [{= layer_w =}-1:0] ly);
        begin
            case ({s, ly})
{% for h in hstarts %}                {= h.key =}: hstart = {= h.value =};
{% endfor %}                default: hstart = {= hstart_w =}'d0;
            endcase
        end
    endfunction
{% for p in ports %}    // Port {= p.index =}.
    wire [2:0] src_{= p.index =} = rv_src[{= p.index =}*3 +: 3];
    wire [{= layer_w =}-1:0] lay_{= p.index =} = rv_layer[{= p.index =}*{= layer_w =} +: {= layer_w =}];
    reg [{= lane_w =}-1:0] hl_lane_{= p.index =} [0:7];
    reg [{= vaw =}-1:0] hl_idx_{= p.index =} [0:7];
    reg [{= hcnt_w =}-1:0] hl_cnt_{= p.index =} [0:7];
    wire [{= hstart_w =}-1:0] hs_{= p.index =} = hstart(src_{= p.index =}, lay_{= p.index =});
    wire hfirst_{= p.index =} = (hl_cnt_{= p.index =}[src_{= p.index =}] == {= hcnt_w =}'d0);
    wire [{= lane_w =}-1:0] hw_lane_{= p.index =} = hfirst_{= p.index =} ? hs_{= p.index =}[{= hs_lane_hi =}:{= hs_lane_lo =}] : hl_lane_{= p.index =}[src_{= p.index =}];
    wire [{= vaw =}-1:0] hw_idx_{= p.index =} = hfirst_{= p.index =} ? hs_{= p.index =}[{= hs_idx_hi =}:{= hs_idx_lo =}] : hl_idx_{= p.index =}[src_{= p.index =}];
    wire [{= hcnt_w =}-1:0] hw_n_{= p.index =} = hs_{= p.index =}[{= hs_n_hi =}:0];
    reg [{= vaw =}-1:0] hw_base_{= p.index =};
    always @* begin
        hw_base_{= p.index =} = {= vaw =}'d0;
        case (lay_{= p.index =})
{% for c in hbases %}            {= layer_w =}'d{= c.index =}: hw_base_{= p.index =} = rv_par[{= p.index =}] ? {= vaw =}'d{= c.hbase1 =} : {= vaw =}'d{= c.hbase0 =};
{% endfor %}            default: ;
        endcase
    end
    integer i_{= p.index =};
    always @(posedge clk) begin
        if (rst) begin
            for (i_{= p.index =} = 0; i_{= p.index =} < 8; i_{= p.index =} = i_{= p.index =} + 1) begin
                hl_cnt_{= p.index =}[i_{= p.index =}] <= {= hcnt_w =}'d0;
                hl_lane_{= p.index =}[i_{= p.index =}] <= {= lane_w =}'d0;
                hl_idx_{= p.index =}[i_{= p.index =}] <= {= vaw =}'d0;
            end
        end else if (rv_take[{= p.index =}]) begin
            if (hw_idx_{= p.index =} == {= vaw =}'d{= bh_last =}) begin
                hl_idx_{= p.index =}[src_{= p.index =}] <= {= vaw =}'d0;
                hl_lane_{= p.index =}[src_{= p.index =}] <= hw_lane_{= p.index =} + {= lane_w =}'d1;
            end else begin
                hl_idx_{= p.index =}[src_{= p.index =}] <= hw_idx_{= p.index =} + {= vaw =}'d1;
                hl_lane_{= p.index =}[src_{= p.index =}] <= hw_lane_{= p.index =};
            end
            hl_cnt_{= p.index =}[src_{= p.index =}] <= (hl_cnt_{= p.index =}[src_{= p.index =}] + {= hcnt_w =}'d1 == hw_n_{= p.index =}) ? {= hcnt_w =}'d0 : hl_cnt_{= p.index =}[src_{= p.index =}] + {= hcnt_w =}'d1;
        end
    end
{% endfor %}
    // x: {= input_size =} values per timestep, bank by bank, into the buffer of the tick's parity.
    // The loader fills the x of one tick (buffer parity ld_par) and may run one tick ahead of
    // the controller; `ahead` (the loader's tick minus the controller's, kept incrementally)
    // says how far, so no 32-bit compare sits in front of the stream's ready.
    reg [31:0] ld_tl, ld_b;
    reg        ld_par;
    reg signed [15:0] ahead;
    reg        ld_done;
    reg [{= lane_w =}-1:0] ld_lane;
    reg [{= vaw =}-1:0] ld_idx;
    reg [{= in_w =}-1:0] ld_count;
    wire ld_ok = busy && !ld_done && (ahead <= 16'sd1);
    wire ld_req = {= need_x =} && ld_ok && s_axis_tvalid;
    assign x_ready = !{= need_x =} || ld_done || (ahead > 16'sd0);

    // Priority: local h, then receive ports in order, then the x stream.
{% for p in ports %}    assign rv_take[{= p.index =}] = rv_h[{= p.index =}] && !lh_req{% for q in ports %}{% if q.index < p.index %} && !rv_h[{= q.index =}]{% endif %}{% endfor %};
{% endfor %}    wire take_x = ld_req && !lh_req && (rv_h == {= nports =}'d0);
    always @* begin
        vw_en = 1'b0;
        vw_lane = {= lane_w =}'d0;
        vw_addr = {= vaw =}'d0;
        vw_data = {= dw =}'d0;
        if (lh_req) begin
            vw_en = 1'b1; vw_lane = lh_lane; vw_addr = hbase_wr + lh_idx; vw_data = h;
{% for p in ports %}        end else if (rv_take[{= p.index =}]) begin
            vw_en = 1'b1; vw_lane = hw_lane_{= p.index =}; vw_addr = hw_base_{= p.index =} + hw_idx_{= p.index =};
            vw_data = rv_data[{= p.index =}*{= accw =} +: {= dw =}];
{% endfor %}        end else if (take_x) begin
            vw_en = 1'b1; vw_lane = ld_lane; vw_addr = (ld_par ? {= vaw =}'d{= bx0 =} : {= vaw =}'d0) + ld_idx;
            vw_data = s_axis_tdata[{= dw =}-1:0];
        end
    end
    assign s_axis_tready = {= need_x =} ? (ld_ok && !lh_req && (rv_h == {= nports =}'d0)) : 1'b1;
    // The loader's tick advances by one per timestep, and past a sequence's drain ticks (which
    // take no x) at its end.
    wire ld_vec = take_x && (ld_count == {= in_w =}'d{= in_last =});
    wire ld_seq_end = ld_vec && (ld_tl + 32'd1 == seq_len);
    wire signed [15:0] ld_step = !ld_vec ? 16'sd0 : ld_seq_end ? 16'sd{= layers_n =} : 16'sd1;
    always @(posedge clk) begin
        if (rst || start) begin
            ahead <= 16'sd0;
        end else if (!ld_done) begin
            ahead <= ahead + ld_step - (tick ? 16'sd1 : 16'sd0);
        end
    end
    always @(posedge clk) begin
        if (rst || start) begin
            ld_par <= 1'b0; ld_tl <= 32'd0; ld_b <= 32'd0; ld_done <= !{= need_x =};
            ld_lane <= {= lane_w =}'d0; ld_idx <= {= vaw =}'d0; ld_count <= {= in_w =}'d0;
        end else if (take_x) begin
            if (ld_idx == {= vaw =}'d{= bx0_last =}) begin
                ld_idx <= {= vaw =}'d0;
                ld_lane <= ld_lane + {= lane_w =}'d1;
            end else begin
                ld_idx <= ld_idx + {= vaw =}'d1;
            end
            if (ld_vec) begin
                ld_count <= {= in_w =}'d0;
                ld_lane <= {= lane_w =}'d0;
                ld_idx <= {= vaw =}'d0;
                if (ld_seq_end) begin
                    ld_tl <= 32'd0;
                    ld_par <= ld_par ^ {= layers_odd =};
                    if (ld_b + 32'd1 == seq_count) ld_done <= 1'b1;
                    else ld_b <= ld_b + 32'd1;
                end else begin
                    ld_tl <= ld_tl + 32'd1;
                    ld_par <= !ld_par;
                end
            end else begin
                ld_count <= ld_count + {= in_w =}'d1;
            end
        end
    end
{% if need_x == "1'b0" %}    wire unused_loader = &{1'b0, s_axis_tdata, s_axis_tvalid, ld_tl, ld_b, seq_len, seq_count};
{% else %}{% if vb > dw %}    wire unused_loader = &{1'b0, s_axis_tdata[{= vb =}-1:{= dw =}]};
{% endif %}{% endif %}    wire unused_in = &{1'b0, rv_data};
endmodule

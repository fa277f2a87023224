{= header =}
// {= func =} for {= input_fmt =} inputs, {= output_fmt =} outputs: {= method =} with {= pieces =}
// pieces over [{= lo =}, {= hi =}); inputs outside clamp to the ends. Max abs error against
// float, over every input code: {= max_err =}. The golden model evaluates the same integers.
// Pipelined: y is x's value {= lat =} advancing cycles later, one logic step per stage (clamp;
// table read; multiply; full-width add; one rounding and saturation). Holds while `adv` is low.
module {= module =} (
    input  wire                 clk,
    input  wire                 adv,
    input  wire [{= iw =}-1:0]  x,
    output reg  [{= ow =}-1:0]  y
);
    // Stage 1: rel = clamp(x - lo, 0, last).
    wire [{= iw =}:0] d = {= x_ext =} - {= lo_const =};
    wire below = d[{= iw =}];
    wire above = !below && (d > {= last_const =});
    reg [{= rel_w =}-1:0] rel;
{% if iw + 1 > rel_w %}    wire unused_d = &{1'b0, d[{= iw =}:{= rel_w =}]};
{% endif %}    always @(posedge clk) if (adv) rel <= below ? {= rel_w =}'d0 : (above ? {= rel_w =}'d{= last =} : d[{= rel_w =}-1:0]);
    wire [{= kw =}-1:0] k = rel[{= rel_w =}-1:{= shift =}];
{% if is_lut %}    // Stage 2: the table; stages 3 to {= lat =} only delay, so both methods have one latency.
    reg [{= ow =}-1:0] v;
    always @* begin
        case (k)
{% for e in entries %}            {= kw =}'d{= loop.index0 =}: v = {= e =};
{% endfor %}            default: v = {= ow =}'d0;
        endcase
    end
    reg [{= ow =}-1:0] v2, v3, v4;
    always @(posedge clk) begin
        if (adv) begin
            v2 <= v;
            v3 <= v2;
            v4 <= v3;
            y <= v4;
        end
    end
{% if shift > 0 %}    wire unused_off = &{1'b0, rel[{= shift =}-1:0]};
{% endif %}{% else %}    // Stage 2: coefficient table and the offset inside the segment.
    reg [{= c0w =}-1:0] c0;
    reg [{= c1w =}-1:0] c1;
    always @* begin
        case (k)
{% for e in coeffs %}            {= kw =}'d{= loop.index0 =}: begin c0 = {= e.0 =}; c1 = {= e.1 =}; end
{% endfor %}            default: begin c0 = {= c0w =}'d0; c1 = {= c1w =}'d0; end
        endcase
    end
    reg [{= c0w =}-1:0] c0_2, c0_3;
    reg [{= c1w =}-1:0] c1_2;
    reg [{= shift =}-1:0] off_2;
    // Stage 3: C1 x offset, signed, one DSP block; stage 4: + C0 at full width; stage 5: one
    // rounding and saturation.
    reg [{= accw =}-1:0] prod_3, acc_4;
    wire [{= ow =}-1:0] y_next;
    wire unused_acc_clip;
    partita_requant #(
        .IW({= accw =}), .SHR({= guard =}), .SHL(0), .OW({= ow =}), .ROUND_NE({= round_ne =}), .SAT(1)
    ) u_out (.x(acc_4), .y(y_next), .clip(unused_acc_clip));
    always @(posedge clk) begin
        if (adv) begin
            c0_2 <= c0;
            c1_2 <= c1;
            off_2 <= rel[{= shift =}-1:0];
            c0_3 <= c0_2;
            prod_3 <= $signed({= c1_ext =}) * $signed({= off_ext =});
            acc_4 <= $signed({= c0_ext =}) + $signed(prod_3);
            y <= y_next;
        end
    end
{% endif %}endmodule

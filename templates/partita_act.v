{= header =}
// {= func =} for {= input_fmt =} inputs, {= output_fmt =} outputs: {= method =} with {= pieces =}
// pieces over [{= lo =}, {= hi =}); inputs outside clamp to the ends. Max abs error against
// float, over every input code: {= max_err =}. The golden model evaluates the same integers.
module {= module =} (
    input  wire [{= iw =}-1:0] x,
    output wire [{= ow =}-1:0] y
);
    // rel = clamp(x - lo, 0, last)
    wire [{= iw =}:0] d = {= x_ext =} - {= lo_const =};
    wire below = d[{= iw =}];
    wire above = !below && (d > {= last_const =});
    wire [{= rel_w =}-1:0] rel = below ? {= rel_w =}'d0 : (above ? {= rel_w =}'d{= last =} : d[{= rel_w =}-1:0]);
{% if iw + 1 > rel_w %}    wire unused_d = &{1'b0, d[{= iw =}:{= rel_w =}]};
{% endif %}    wire [{= kw =}-1:0] k = rel[{= rel_w =}-1:{= shift =}];
{% if is_lut %}    reg [{= ow =}-1:0] v;
    always @* begin
        case (k)
{% for e in entries %}            {= kw =}'d{= loop.index0 =}: v = {= e =};
{% endfor %}            default: v = {= ow =}'d0;
        endcase
    end
    assign y = v;
{% if shift > 0 %}    wire unused_off = &{1'b0, rel[{= shift =}-1:0]};
{% endif %}{% else %}    reg [{= c0w =}-1:0] c0;
    reg [{= c1w =}-1:0] c1;
    always @* begin
        case (k)
{% for e in coeffs %}            {= kw =}'d{= loop.index0 =}: begin c0 = {= e.0 =}; c1 = {= e.1 =}; end
{% endfor %}            default: begin c0 = {= c0w =}'d0; c1 = {= c1w =}'d0; end
        endcase
    end
    // acc = C0 + C1 * offset, full width; then one rounding and saturation. Signed, so the
    // multiply is C1 x offset wide, one DSP block.
    wire [{= accw =}-1:0] acc = $signed({= c0_ext =}) + $signed({= c1_ext =}) * $signed({= off_ext =});
    wire unused_acc_clip;
    partita_requant #(
        .IW({= accw =}), .SHR({= guard =}), .SHL(0), .OW({= ow =}), .ROUND_NE({= round_ne =}), .SAT(1)
    ) u_out (.x(acc), .y(y), .clip(unused_acc_clip));
{% endif %}endmodule

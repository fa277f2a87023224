{= header =}
// Place-and-route harness for device {= me =} (module {= top =}); not part of the device's RTL.
// `partita synth` builds it in place of the device's top.
{% for d in doc %}// {= d =}
{% endfor %}module {= name =} (
    input  wire        clk,
{% if core %}    input  wire        rst_n,
    input  wire        sin,
    output wire        sout
{% else %}    input  wire        rst_n{% for p in pins %},
    {% if p.input %}input {% else %}output{% endif %} wire {% if let Some(h) = p.hi %}[{= h =}:0] {% endif %}{= p.name =}{% endfor %}
{% endif %});
{% for p in wires %}    wire {% if let Some(h) = p.hi %}[{= h =}:0] {% endif %}{= p.name =};
{% endfor %}{% if core %}    reg [{= ni_hi =}:0] isr = {{= ni =}{1'b0}};
    reg [{= no_hi =}:0] sig = {{= no =}{1'b0}};
    always @(posedge clk) begin
        isr <= {isr[{= ni_hi1 =}:0], sin};
        sig <= {sig[{= no_hi1 =}:0], sig[{= no_hi =}]} ^ {{% for o in outs %}{= o =}{% if !loop.last %}, {% endif %}{% endfor %}};
    end
    assign {{% for i in ins %}{= i =}{% if !loop.last %}, {% endif %}{% endfor %}} = isr;
    assign sout = sig[{= no_hi =}];
{% endif %}{% for k in loops %}    wire [{= lw_hi =}:0] l{= k =}_td;
    wire        l{= k =}_tv;
    wire        l{= k =}_tl;
    reg  [{= lw_hi =}:0] l{= k =}_rd = {{= lw =}{1'b0}};
    reg         l{= k =}_rv = 1'b0;
    reg         l{= k =}_rl = 1'b0;
    always @(posedge clk) begin
        l{= k =}_rd <= l{= k =}_td;
        l{= k =}_rv <= l{= k =}_tv;
        l{= k =}_rl <= l{= k =}_tl;
    end
{% endfor %}    {= top =} u_dev (
{% for c in conns %}        .{= c.port =}({= c.signal =}){% if !loop.last %},{% endif %}
{% endfor %}    );
endmodule

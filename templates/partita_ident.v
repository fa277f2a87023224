{= header =}
// partita multi-device node identity, node design {= design =} (devices {= members =}): every
// constant in which these devices' hardware differs, as a function of dev_id. Each device's top
// ties dev_id to its index, so synthesis folds this module to constants; the cosimulation builds
// the node design once and sets dev_id per device.
module {= name =} (
    input  wire [2:0]  dev_id,
    output reg  [2:0]  me,        // this device
    output reg  [7:0]  others,    // every other device
    output reg  [15:0] routes,    // tx port of each destination, 2 bits each
    output reg  [63:0] hmasks,    // per layer, the devices its h values go to, 8 bits each
    output reg  [7:0]  bc_fwd,    // sources whose ring broadcasts this device forwards
    output reg  [15:0] node,      // the NODE register: device index << 8 | device count
    // Per layer, layer 0 lowest: where its partial sums go, whether that is this device, the
    // units this device finishes, their partial-buffer base, and the first one's lane and index
    // in the vector memory.
    output reg  [{= w.pdst_w =}-1:0] l_pdst,
    output reg  [{= w.plocal_w =}-1:0] l_plocal,
    output reg  [{= w.nfin_w =}-1:0] l_nfin,
    output reg  [{= w.pbase_w =}-1:0] l_pbase,
    output reg  [{= w.flane_w =}-1:0] l_flane,
    output reg  [{= w.fidx_w =}-1:0] l_fidx,
    // Received h, per {source, layer} (that index times {= w.hstart_w =} bits): where the source's run
    // of that layer starts in the vector memory, {lane, index, count}.
    output reg  [{= w.hstarts_w =}-1:0] hstarts
);
    always @* begin
        me = 3'd0; others = 8'd0; routes = 16'd0; hmasks = 64'd0; bc_fwd = 8'd0; node = 16'd0;
        l_pdst = {= w.pdst_w =}'d0; l_plocal = {= w.plocal_w =}'d0; l_nfin = {= w.nfin_w =}'d0;
        l_pbase = {= w.pbase_w =}'d0; l_flane = {= w.flane_w =}'d0; l_fidx = {= w.fidx_w =}'d0;
        hstarts = {= w.hstarts_w =}'d0;
        case (dev_id)
{% for d in devs %}            3'd{= d.index =}: begin
                me = 3'd{= d.index =}; others = 8'b{= d.others =}; routes = 16'h{= d.routes =};
                hmasks = 64'h{= d.hmasks =}; bc_fwd = 8'b{= d.bc_fwd =}; node = 16'h{= d.node =};
                l_pdst = {= w.pdst_w =}'h{= d.pdst =}; l_plocal = {= w.plocal_w =}'h{= d.plocal =};
                l_nfin = {= w.nfin_w =}'h{= d.nfin =}; l_pbase = {= w.pbase_w =}'h{= d.pbase =};
                l_flane = {= w.flane_w =}'h{= d.flane =}; l_fidx = {= w.fidx_w =}'h{= d.fidx =};
                hstarts = {= w.hstarts_w =}'h{= d.hstarts =};
            end
{% endfor %}            default: ;
        endcase
    end
endmodule

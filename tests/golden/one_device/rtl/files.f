// partita 0.1.0 file list (plan hash 4aa217673fdbd0c3); top module partita_top
partita_requant.v
partita_fifo.v
partita_skid.v
partita_axil.v
partita_unpack.v
partita_pack.v
partita_rep.v
partita_engine.v
partita_act_sigmoid.v
partita_act_tanh.v
partita_act_tanh_cell.v
partita_ew.v
partita_regs.v
partita_top.v

// partita 0.1.0 file list (plan hash 52b5252bdf5c118a); top module partita_top
partita_requant.v
partita_skid.v
partita_axil.v
partita_unpack.v
partita_pack.v
partita_st0.v
partita_st1.v
partita_st2.v
partita_regs.v
partita_top.v

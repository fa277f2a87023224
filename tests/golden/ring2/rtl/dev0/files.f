// partita 0.1.0 file list (plan hash 4a8bea21f51bff5f), device 0 of 2; top module partita_d0_top
partita_requant.v
partita_fifo.v
partita_crc32.v
partita_link_tx.v
partita_link_rx.v
partita_tx_arb.v
partita_link_hub.v
partita_axil.v
partita_d0_engine.v
partita_d0_act_sigmoid.v
partita_d0_act_tanh.v
partita_d0_act_tanh_cell.v
partita_d0_ew.v
partita_d0_reduce.v
partita_d0_vwrite.v
partita_d0_regs.v
partita_d0_top.v

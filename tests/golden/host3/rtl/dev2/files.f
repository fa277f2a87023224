// partita 0.1.0 file list (plan hash a0c38d28e1e94547), device 2 of 3; top module partita_d2_top
partita_requant.v
partita_fifo.v
partita_crc32.v
partita_link_tx.v
partita_link_rx.v
partita_tx_arb.v
partita_link_hub.v
partita_axil.v
partita_d2_engine.v
partita_d2_act_sigmoid.v
partita_d2_act_tanh.v
partita_d2_act_tanh_cell.v
partita_d2_ew.v
partita_d2_reduce.v
partita_d2_vwrite.v
partita_d2_regs.v
partita_d2_top.v

//! partita-hdl: the fixed-width infrastructure cores (AXI4-Lite register block, AXI4-Stream
//! FIFOs, link framing).
//!
//! Not built yet: these cores arrive with RTL generation (the single-FPGA hardware issue).
//! This crate exists so the workspace layout is in place; it exports nothing today.

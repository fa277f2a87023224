//! Remote boards over gRPC (tonic and prost): [`server`] serves one device of a plan, and
//! [`client::RemoteDevice`] is a device behind the [`crate::driver::Device`] trait that talks
//! to it, so the run sequences and the system driver (with its host relay) drive devices on
//! other machines like local ones.

pub mod client;
pub mod proto;
pub mod server;

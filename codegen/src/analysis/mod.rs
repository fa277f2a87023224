//! Analyses of a design: what each device holds ([`resources`]), what crosses the links
//! ([`traffic`], the one traffic model), and how many cycles a timestep takes ([`cost`]).

pub mod cnn_cost;
pub mod cost;
pub mod prediction;
pub mod resources;
pub mod traffic;

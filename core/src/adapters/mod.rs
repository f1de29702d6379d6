//! Framework adapters: the engine takes `http` requests and gives `http` responses; these turn
//! it into a tower `Service` (axum, tower stacks) and a hyper server.

#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "tower")]
pub mod tower;

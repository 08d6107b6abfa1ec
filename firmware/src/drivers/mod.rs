//! Sensor drivers, generic over the embedded-hal 1.0 traits so they run on any board (and on the
//! simulated board of `relais-board-sim`).

pub mod hx711;

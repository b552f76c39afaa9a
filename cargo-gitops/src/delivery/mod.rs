//! The delivery side of the methodology, after an image exists: Flux image policies that pick
//! each environment's newest tag, the git side of releases and promotions, and the history of
//! what an environment received.

pub mod flux;
pub mod history;
pub mod promote;
pub mod release;

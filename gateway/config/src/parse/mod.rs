//! YAML text to a positioned tree, and serde over that tree.

pub mod de;
pub mod tree;

//! selfexe

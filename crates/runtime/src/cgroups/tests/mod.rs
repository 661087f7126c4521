//! Integration tests of the managers against real cgroupfs and fake trees.

//! Capabilities, seccomp, rlimits, no_new_privs.

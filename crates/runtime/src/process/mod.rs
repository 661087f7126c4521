//! Creating the container's process: clone into namespaces, set it up, wait, exec.

//! Import of OCI/Docker seccomp profiles (being written).

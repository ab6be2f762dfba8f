//! The scorch web server and its embedded flame-graph page (not built yet).

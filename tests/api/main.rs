//! Integration tests: each starts the real server on a free port with a temp
//! database and a real SMTP server in this process, and speaks HTTP to it.

mod admin;
mod backup;
mod binary;
mod cors;
mod crash;
mod disk_full;
mod enumeration;
mod ephemeral;
mod errors;
mod faults;
mod fuzz;
mod helpers;
mod import_django;
mod interop;
mod keys;
mod limits;
mod login;
mod mail;
mod metrics;
mod multi_process;
mod password_reset;
mod password_rules;
mod process;
mod profile;
mod refresh;
mod register;
mod reset_security;
mod restart;
mod revocation;
mod rotation;
mod slow_clients;
mod smtp;

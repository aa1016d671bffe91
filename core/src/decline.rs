//! Decline reasons of the reference and their field-39 codes.

//! PIN blocks (ISO 9564 format 0) and PIN verification values.

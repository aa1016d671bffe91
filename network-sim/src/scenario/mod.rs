//! The scenario format: parsing, replay and expectations.

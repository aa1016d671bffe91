//! Profiles (customers) and their statuses.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A profile's status. Cards of a profile that is not `ACTIVE` are declined.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProfileStatus {
    Active,
    Inactive,
    Suspended,
}

impl ProfileStatus {
    pub const ALL: [ProfileStatus; 3] = [
        ProfileStatus::Active,
        ProfileStatus::Inactive,
        ProfileStatus::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileStatus::Active => "ACTIVE",
            ProfileStatus::Inactive => "INACTIVE",
            ProfileStatus::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(text: &str) -> Option<ProfileStatus> {
        ProfileStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for ProfileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IANA time zone (`Europe/London`): limit windows reset at midnight and on the 1st of
/// the month in the profile's own zone.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(pub chrono_tz::Tz);

/// Why a time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown IANA time zone {0:?}")]
pub struct TimeZoneError(pub String);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(chrono_tz::Tz::UTC);

    pub fn parse(name: &str) -> Result<TimeZone, TimeZoneError> {
        name.parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| TimeZoneError(name.to_owned()))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone::UTC
    }
}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        TimeZone::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_parse_by_iana_name() {
        assert_eq!(
            TimeZone::parse("Asia/Singapore").unwrap().name(),
            "Asia/Singapore"
        );
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert_eq!(TimeZone::default(), TimeZone::UTC);
        for s in ProfileStatus::ALL {
            assert_eq!(ProfileStatus::parse(s.as_str()), Some(s));
        }
    }
}

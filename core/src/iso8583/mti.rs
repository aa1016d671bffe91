//! Message type indicators (ISO 8583:1987, version digit 0).

use std::fmt;

/// The message types cardcore handles. Any other MTI is refused as unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Mti {
    /// 0100: authorisation request (dual message: clearing follows separately).
    AuthorizationRequest,
    /// 0101: authorisation request, repeat.
    AuthorizationRequestRepeat,
    /// 0110: authorisation response.
    AuthorizationResponse,
    /// 0120: authorisation advice (stand-in: the network already approved).
    AuthorizationAdvice,
    /// 0121: authorisation advice, repeat.
    AuthorizationAdviceRepeat,
    /// 0130: authorisation advice response.
    AuthorizationAdviceResponse,
    /// 0200: financial request (single message: authorised and posted at once).
    FinancialRequest,
    /// 0210: financial response.
    FinancialResponse,
    /// 0220: financial advice (completion / clearing of an earlier authorisation).
    FinancialAdvice,
    /// 0221: financial advice, repeat.
    FinancialAdviceRepeat,
    /// 0230: financial advice response.
    FinancialAdviceResponse,
    /// 0400: reversal request.
    ReversalRequest,
    /// 0401: reversal request, repeat.
    ReversalRequestRepeat,
    /// 0410: reversal response.
    ReversalResponse,
    /// 0420: reversal advice.
    ReversalAdvice,
    /// 0421: reversal advice, repeat.
    ReversalAdviceRepeat,
    /// 0430: reversal advice response.
    ReversalAdviceResponse,
    /// 0800: network management request (echo, sign-on, sign-off).
    NetworkManagementRequest,
    /// 0810: network management response.
    NetworkManagementResponse,
}

/// What a message is about: the MTI's second digit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MessageClass {
    Authorization,
    Financial,
    Reversal,
    NetworkManagement,
}

impl Mti {
    pub const ALL: [Mti; 19] = [
        Mti::AuthorizationRequest,
        Mti::AuthorizationRequestRepeat,
        Mti::AuthorizationResponse,
        Mti::AuthorizationAdvice,
        Mti::AuthorizationAdviceRepeat,
        Mti::AuthorizationAdviceResponse,
        Mti::FinancialRequest,
        Mti::FinancialResponse,
        Mti::FinancialAdvice,
        Mti::FinancialAdviceRepeat,
        Mti::FinancialAdviceResponse,
        Mti::ReversalRequest,
        Mti::ReversalRequestRepeat,
        Mti::ReversalResponse,
        Mti::ReversalAdvice,
        Mti::ReversalAdviceRepeat,
        Mti::ReversalAdviceResponse,
        Mti::NetworkManagementRequest,
        Mti::NetworkManagementResponse,
    ];

    /// The four ASCII digits on the wire.
    pub fn as_bytes(self) -> &'static [u8; 4] {
        match self {
            Mti::AuthorizationRequest => b"0100",
            Mti::AuthorizationRequestRepeat => b"0101",
            Mti::AuthorizationResponse => b"0110",
            Mti::AuthorizationAdvice => b"0120",
            Mti::AuthorizationAdviceRepeat => b"0121",
            Mti::AuthorizationAdviceResponse => b"0130",
            Mti::FinancialRequest => b"0200",
            Mti::FinancialResponse => b"0210",
            Mti::FinancialAdvice => b"0220",
            Mti::FinancialAdviceRepeat => b"0221",
            Mti::FinancialAdviceResponse => b"0230",
            Mti::ReversalRequest => b"0400",
            Mti::ReversalRequestRepeat => b"0401",
            Mti::ReversalResponse => b"0410",
            Mti::ReversalAdvice => b"0420",
            Mti::ReversalAdviceRepeat => b"0421",
            Mti::ReversalAdviceResponse => b"0430",
            Mti::NetworkManagementRequest => b"0800",
            Mti::NetworkManagementResponse => b"0810",
        }
    }

    /// The MTI as text, e.g. `"0100"`.
    pub fn as_str(self) -> &'static str {
        // Every MTI is four ASCII digits.
        std::str::from_utf8(self.as_bytes()).unwrap_or("????")
    }

    /// The MTI as a number, e.g. 100 for 0100 (as DE 90 carries it).
    pub fn code(self) -> u16 {
        self.as_bytes()
            .iter()
            .fold(0, |acc, &d| acc * 10 + u16::from(d - b'0'))
    }

    /// The MTI with this numeric code (100 for 0100).
    pub fn from_code(code: u16) -> Option<Mti> {
        let mti = match code {
            100 => Mti::AuthorizationRequest,
            101 => Mti::AuthorizationRequestRepeat,
            110 => Mti::AuthorizationResponse,
            120 => Mti::AuthorizationAdvice,
            121 => Mti::AuthorizationAdviceRepeat,
            130 => Mti::AuthorizationAdviceResponse,
            200 => Mti::FinancialRequest,
            210 => Mti::FinancialResponse,
            220 => Mti::FinancialAdvice,
            221 => Mti::FinancialAdviceRepeat,
            230 => Mti::FinancialAdviceResponse,
            400 => Mti::ReversalRequest,
            401 => Mti::ReversalRequestRepeat,
            410 => Mti::ReversalResponse,
            420 => Mti::ReversalAdvice,
            421 => Mti::ReversalAdviceRepeat,
            430 => Mti::ReversalAdviceResponse,
            800 => Mti::NetworkManagementRequest,
            810 => Mti::NetworkManagementResponse,
            _ => return None,
        };
        Some(mti)
    }

    /// Parses the four wire digits. `None` if they are not digits or not one of [`Mti::ALL`].
    pub fn from_bytes(digits: &[u8]) -> Option<Mti> {
        let digits: &[u8; 4] = digits.try_into().ok()?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Mti::from_code(
            digits
                .iter()
                .fold(0, |acc, &d| acc * 10 + u16::from(d - b'0')),
        )
    }

    /// The response to this message: MTI + 10 (a repeat is answered like its original).
    /// `None` for responses.
    pub fn response(self) -> Option<Mti> {
        let response = match self.original() {
            Mti::AuthorizationRequest => Mti::AuthorizationResponse,
            Mti::AuthorizationAdvice => Mti::AuthorizationAdviceResponse,
            Mti::FinancialRequest => Mti::FinancialResponse,
            Mti::FinancialAdvice => Mti::FinancialAdviceResponse,
            Mti::ReversalRequest => Mti::ReversalResponse,
            Mti::ReversalAdvice => Mti::ReversalAdviceResponse,
            Mti::NetworkManagementRequest => Mti::NetworkManagementResponse,
            _ => return None,
        };
        Some(response)
    }

    /// A repeat (xx01, xx21) is the same message sent again because no answer came.
    pub fn is_repeat(self) -> bool {
        matches!(
            self,
            Mti::AuthorizationRequestRepeat
                | Mti::AuthorizationAdviceRepeat
                | Mti::FinancialAdviceRepeat
                | Mti::ReversalRequestRepeat
                | Mti::ReversalAdviceRepeat
        )
    }

    /// The message a repeat repeats; any other MTI is its own original.
    pub fn original(self) -> Mti {
        match self {
            Mti::AuthorizationRequestRepeat => Mti::AuthorizationRequest,
            Mti::AuthorizationAdviceRepeat => Mti::AuthorizationAdvice,
            Mti::FinancialAdviceRepeat => Mti::FinancialAdvice,
            Mti::ReversalRequestRepeat => Mti::ReversalRequest,
            Mti::ReversalAdviceRepeat => Mti::ReversalAdvice,
            other => other,
        }
    }

    /// Responses (xx10, xx30) answer; everything else asks or advises.
    pub fn is_response(self) -> bool {
        self.response().is_none()
    }

    /// Advices (xx20, xx21) tell the issuer what already happened.
    pub fn is_advice(self) -> bool {
        matches!(
            self.original(),
            Mti::AuthorizationAdvice | Mti::FinancialAdvice | Mti::ReversalAdvice
        )
    }

    pub fn class(self) -> MessageClass {
        match self.as_bytes()[1] {
            b'1' => MessageClass::Authorization,
            b'2' => MessageClass::Financial,
            b'4' => MessageClass::Reversal,
            _ => MessageClass::NetworkManagement,
        }
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_is_mti_plus_ten() {
        for mti in Mti::ALL {
            assert_eq!(Mti::from_bytes(mti.as_bytes()), Some(mti));
            assert_eq!(Mti::from_code(mti.code()), Some(mti));
            if let Some(response) = mti.response() {
                assert_eq!(response.code(), mti.original().code() + 10, "{mti}");
                assert!(response.is_response());
                assert_eq!(response.class(), mti.class());
            }
            if mti.is_repeat() {
                assert_eq!(mti.code(), mti.original().code() + 1);
            }
        }
        assert_eq!(Mti::from_bytes(b"0300"), None);
        assert_eq!(Mti::from_bytes(b"010"), None);
        assert_eq!(
            Mti::ReversalAdviceRepeat.response(),
            Some(Mti::ReversalAdviceResponse)
        );
        assert!(Mti::AuthorizationAdviceRepeat.is_advice());
        assert!(!Mti::AuthorizationRequest.is_advice());
        assert_eq!(Mti::from_code(100).map(Mti::as_str), Some("0100"));
    }
}

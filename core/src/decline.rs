//! Decline reasons of the reference and their ISO 8583 field-39 codes.
//!
//! Three tables hold everything, each in one place: [`DeclineReason`] rows (code, field-39 code,
//! description), [`DetailedDeclineReason`] rows (code, the reasons it accompanies,
//! description) and the field-39 codes cardcore sends (meaning, and why each reason maps to
//! it). `docs/decline-reasons.md` is generated from them by [`decline_reasons_markdown`], and
//! a test fails when the checked-in file drifts from the tables.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a transaction was declined: the reference's `declineReason`, its optional
/// `detailedDeclineReason`, and through them the field-39 code on the wire.
///
/// Two bytes and `Copy`: the decision pipeline returns it by value on every decline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Decline {
    #[serde(rename = "declineReason")]
    pub reason: DeclineReason,
    #[serde(rename = "detailedDeclineReason", default)]
    pub detailed: Option<DetailedDeclineReason>,
}

const _: () = assert!(std::mem::size_of::<Decline>() == 2);

impl Decline {
    pub const fn new(reason: DeclineReason) -> Decline {
        Decline {
            reason,
            detailed: None,
        }
    }

    pub const fn with_detail(reason: DeclineReason, detailed: DetailedDeclineReason) -> Decline {
        Decline {
            reason,
            detailed: Some(detailed),
        }
    }

    /// The field-39 code: the decline reason alone decides it.
    pub fn field39(self) -> ResponseCode {
        self.reason.field39()
    }

    /// Whether the detailed reason (if any) is one that accompanies this reason.
    pub fn is_consistent(self) -> bool {
        match self.detailed {
            None => true,
            Some(detailed) => detailed.accompanies().contains(&self.reason),
        }
    }
}

impl From<DeclineReason> for Decline {
    fn from(reason: DeclineReason) -> Decline {
        Decline::new(reason)
    }
}

/// Every decline reason of the reference, in the reference's order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub enum DeclineReason {
    AccountInactive,
    AccountSuspended,
    AtmPinChangeNotAllowed,
    BlockedCountry,
    BlockedSubscription,
    CardExpired,
    CardFrozen,
    CardInactive,
    CardBlocked,
    CardPartnerSuspended,
    ChipPinEntryTriesExceeded,
    ConnectionIssue,
    ContactlessPinEntryRequired,
    CreditTransactionsNotSupported,
    CumulativeLimitExceeded,
    DeclinedAdvice,
    IncorrectCvv,
    IncorrectExpiryDate,
    IncorrectPin,
    InsufficientFunds,
    Invalid3dsUcaf,
    IncorrectArqc,
    IncorrectIcvv,
    InvalidMerchant,
    InvalidTransaction,
    MandateDccNonSupportedForCardCountry,
    MandateLocalCashWithdrawalNotAllowed,
    NonSupportedCurrency,
    NonSupportedMccForCountry,
    PaymentMethodDailyLimitExceeded,
    PaymentMethodLifetimeLimitExceeded,
    PaymentMethodMonthlyLimitExceeded,
    PaymentMethodNotAllowed,
    PaymentMethodTransactionLimitExceeded,
    PinEntryTriesExceeded,
    PreActivatedCardPinEntryRequired,
    ProcessingError,
    RestrictedMode,
    ReversalNotMatchingAuthCurrency,
    ScaSoftDecline,
    SchemeBlockedTransaction,
    SecurityCvmFailure,
    SecurityMagstripeSecureElementsIncorrectOrMissing,
    SecurityPinEntryRequired,
    SuspectedFraud,
    SuspectedFraudAml,
    SuspectedFraudCompliance,
    SuspectedFraudCoreFraud,
    SuspectedFraudSanctions,
    SuspectedFraudSoftDecline,
    TransactionTypeNotSupported,
    UnexpectedError,
}

/// How many decline reasons the reference defines.
pub const DECLINE_REASON_COUNT: usize = REASONS.len();

impl DeclineReason {
    /// Every reason, in the reference's order.
    pub const ALL: [DeclineReason; DECLINE_REASON_COUNT] = all_reasons();

    /// The reference's code, e.g. `CARD_FROZEN`.
    pub fn code(self) -> &'static str {
        REASONS[self as usize].code
    }

    /// The reference's description, with links kept as plain text.
    pub fn description(self) -> &'static str {
        REASONS[self as usize].description
    }

    /// The ISO 8583 field-39 code sent on the wire for this reason.
    pub fn field39(self) -> ResponseCode {
        REASONS[self as usize].field39
    }

    /// Parses the reference's code. Not for the hot path: it scans the table.
    pub fn parse(text: &str) -> Result<DeclineReason, CodeError> {
        REASONS
            .iter()
            .find(|row| row.code == text)
            .map(|row| row.reason)
            .ok_or_else(|| CodeError::UnknownReason(shown(text)))
    }
}

/// Every detailed decline reason of the reference, in the reference's order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub enum DetailedDeclineReason {
    InsufficientFundsForBlockedSmartConversion,
    InsufficientFundsForSpecificCurrencyReservation,
    SuspectedFraudNoBalance,
    ResetYourPinAtAtm,
    IncorrectCvv2,
    ScaSoftDeclineContactless,
    SuspectedFraudReviewActivity,
    InvalidTransactionTypeFinal,
    InvalidTransactionTypeContactlessMagstripe,
    InvalidTransactionTypeFallback,
    ContactlessDisabled,
    EcomDisabled,
    ChipDisabled,
    MagstripeDisabled,
    WalletDisabled,
    ProfileGeneralDailyLimitExceededChangeable,
    ProfileGeneralMonthlyLimitExceededChangeable,
    CardGeneralDailyLimitExceededChangeable,
    CardGeneralMonthlyLimitExceededChangeable,
    PaymentMethodMaxMonthlyLimitExceeded,
    Unknown,
}

/// How many detailed decline reasons the reference defines.
pub const DETAILED_DECLINE_REASON_COUNT: usize = DETAILED_REASONS.len();

impl DetailedDeclineReason {
    /// Every detailed reason, in the reference's order.
    pub const ALL: [DetailedDeclineReason; DETAILED_DECLINE_REASON_COUNT] = all_detailed();

    /// The reference's code, e.g. `ECOM_DISABLED`.
    pub fn code(self) -> &'static str {
        DETAILED_REASONS[self as usize].code
    }

    /// The reference's description, with links kept as plain text.
    pub fn description(self) -> &'static str {
        DETAILED_REASONS[self as usize].description
    }

    /// The decline reasons this detail is sent with. The reference does not pair them; the
    /// pairs are DESIGN.md's where it names one, otherwise read from the descriptions.
    pub fn accompanies(self) -> &'static [DeclineReason] {
        DETAILED_REASONS[self as usize].accompanies
    }

    /// Parses the reference's code. Not for the hot path: it scans the table.
    pub fn parse(text: &str) -> Result<DetailedDeclineReason, CodeError> {
        DETAILED_REASONS
            .iter()
            .find(|row| row.code == text)
            .map(|row| row.detailed)
            .ok_or_else(|| CodeError::UnknownDetailedReason(shown(text)))
    }
}

/// An ISO 8583 field-39 response code: two ASCII letters or digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseCode([u8; 2]);

impl ResponseCode {
    pub const APPROVED: ResponseCode = ResponseCode(*b"00");
    pub const INVALID_MERCHANT: ResponseCode = ResponseCode(*b"03");
    pub const DO_NOT_HONOUR: ResponseCode = ResponseCode(*b"05");
    pub const INVALID_TRANSACTION: ResponseCode = ResponseCode(*b"12");
    /// Invalid card number: an unknown PAN.
    pub const UNKNOWN_CARD: ResponseCode = ResponseCode(*b"14");
    /// A reversal or clearing whose original is not on file.
    pub const UNKNOWN_ORIGINAL: ResponseCode = ResponseCode(*b"25");
    pub const FORMAT_ERROR: ResponseCode = ResponseCode(*b"30");
    pub const INSUFFICIENT_FUNDS: ResponseCode = ResponseCode(*b"51");
    pub const EXPIRED_CARD: ResponseCode = ResponseCode(*b"54");
    pub const INCORRECT_PIN: ResponseCode = ResponseCode(*b"55");
    pub const NOT_PERMITTED: ResponseCode = ResponseCode(*b"57");
    pub const SUSPECTED_FRAUD: ResponseCode = ResponseCode(*b"59");
    pub const EXCEEDS_LIMIT: ResponseCode = ResponseCode(*b"61");
    pub const RESTRICTED_CARD: ResponseCode = ResponseCode(*b"62");
    pub const SECURITY_VIOLATION: ResponseCode = ResponseCode(*b"63");
    pub const ORIGINAL_AMOUNT_INCORRECT: ResponseCode = ResponseCode(*b"64");
    /// Exceeds withdrawal frequency limit; on contactless, "insert the card and enter the PIN".
    pub const EXCEEDS_FREQUENCY_LIMIT: ResponseCode = ResponseCode(*b"65");
    pub const PIN_REQUIRED: ResponseCode = ResponseCode(*b"70");
    pub const PIN_TRIES_EXCEEDED: ResponseCode = ResponseCode(*b"75");
    pub const ISSUER_UNAVAILABLE: ResponseCode = ResponseCode(*b"91");
    pub const SYSTEM_ERROR: ResponseCode = ResponseCode(*b"96");
    /// Strong customer authentication required (the PSD2 soft decline).
    pub const AUTHENTICATION_REQUIRED: ResponseCode = ResponseCode(*b"1A");
    pub const CVV_FAILURE: ResponseCode = ResponseCode(*b"N7");
    /// The cardholder revoked the merchant's recurring-payment authorisation.
    pub const RECURRING_REVOKED: ResponseCode = ResponseCode(*b"R1");

    /// Validates two bytes from field 39.
    pub fn from_bytes(bytes: [u8; 2]) -> Result<ResponseCode, CodeError> {
        if bytes.iter().all(u8::is_ascii_alphanumeric) {
            Ok(ResponseCode(bytes))
        } else {
            Err(CodeError::ResponseCode(shown(&String::from_utf8_lossy(
                &bytes,
            ))))
        }
    }

    pub fn parse(text: &str) -> Result<ResponseCode, CodeError> {
        match <[u8; 2]>::try_from(text.as_bytes()) {
            Ok(bytes) => ResponseCode::from_bytes(bytes),
            Err(_) => Err(CodeError::ResponseCode(shown(text))),
        }
    }

    pub const fn as_bytes(self) -> [u8; 2] {
        self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    pub fn is_approved(self) -> bool {
        self == ResponseCode::APPROVED
    }

    /// The code's meaning, for the codes cardcore sends; a generic text for any other.
    pub fn description(self) -> &'static str {
        RESPONSE_CODES
            .iter()
            .find(|row| row.code == self)
            .map_or("not a code cardcore sends", |row| row.meaning)
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseCode({})", self.as_str())
    }
}

/// A code that is not one of the reference's, or a malformed field 39.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("unknown decline reason {0:?}")]
    UnknownReason(String),
    #[error("unknown detailed decline reason {0:?}")]
    UnknownDetailedReason(String),
    #[error("field 39 must be two ASCII letters or digits, got {0:?}")]
    ResponseCode(String),
}

/// The full mapping as markdown: the text of `docs/decline-reasons.md`.
pub fn decline_reasons_markdown() -> String {
    let mut out = String::with_capacity(MARKDOWN_CAPACITY_BYTES);
    out.push_str(MARKDOWN_INTRO);
    push_reasons_table(&mut out);
    push_detailed_table(&mut out);
    push_codes_table(&mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// The tables.

struct ReasonRow {
    reason: DeclineReason,
    code: &'static str,
    field39: ResponseCode,
    description: &'static str,
}

const fn reason_row(
    reason: DeclineReason,
    code: &'static str,
    field39: ResponseCode,
    description: &'static str,
) -> ReasonRow {
    ReasonRow {
        reason,
        code,
        field39,
        description,
    }
}

/// Every decline reason, in enum order. The field-39 codes of the reasons in DESIGN.md's
/// "Decline reasons on the wire" table are DESIGN.md's; the others are argued in
/// [`RESPONSE_CODES`].
const REASONS: [ReasonRow; 52] = [
    reason_row(DeclineReason::AccountInactive, "ACCOUNT_INACTIVE", ResponseCode::RESTRICTED_CARD, "Balance related to the transaction is not active. Ensure that all outstanding actions have been completed before using the card, as this may help avoid potential issues or declines"),
    reason_row(DeclineReason::AccountSuspended, "ACCOUNT_SUSPENDED", ResponseCode::RESTRICTED_CARD, "The transaction has been declined pending further compliance checks. It may have been flagged for potential sanctions issues"),
    reason_row(DeclineReason::AtmPinChangeNotAllowed, "ATM_PIN_CHANGE_NOT_ALLOWED", ResponseCode::NOT_PERMITTED, "PIN change via ATM terminal is not allowed"),
    reason_row(DeclineReason::BlockedCountry, "BLOCKED_COUNTRY", ResponseCode::RESTRICTED_CARD, "Transactions were made in unsupported countries. Check this link (https://wise.com/help/articles/2935771/where-can-i-use-my-wise-card) to see if the country is included in the list of supported nations. It is possible for a merchant to be based in a supported country and have an address registered in a blocked country, albeit infrequently"),
    reason_row(DeclineReason::BlockedSubscription, "BLOCKED_SUBSCRIPTION", ResponseCode::RECURRING_REVOKED, "The system cannot facilitate this transaction as the customer has opted out of recurring payments with this merchant"),
    reason_row(DeclineReason::CardExpired, "CARD_EXPIRED", ResponseCode::EXPIRED_CARD, "The card provided has reached its expiration date, making it invalid for this transaction"),
    reason_row(DeclineReason::CardFrozen, "CARD_FROZEN", ResponseCode::RESTRICTED_CARD, "The customer or the customer service team has put this card on a temporary hold. If the card has not been frozen by the customer, it may be worth investigating further. To resume spending, advise the customer to unfreeze the card"),
    reason_row(DeclineReason::CardInactive, "CARD_INACTIVE", ResponseCode::RESTRICTED_CARD, "The card is either not active or has not been received by the customer, so the transaction cannot proceed"),
    reason_row(DeclineReason::CardBlocked, "CARD_BLOCKED", ResponseCode::RESTRICTED_CARD, "The card has been blocked and cannot be used anymore"),
    reason_row(DeclineReason::CardPartnerSuspended, "CARD_PARTNER_SUSPENDED", ResponseCode::RESTRICTED_CARD, "The internal team has deactivated the account for compliance reasons related to AML, fraud, or EDD. Contact the team if this is believed to be an error"),
    reason_row(DeclineReason::ChipPinEntryTriesExceeded, "CHIP_PIN_ENTRY_TRIES_EXCEEDED", ResponseCode::PIN_TRIES_EXCEEDED, "The PIN is restricted on the chip of the card due to excessive incorrect entries. The blocked PIN can be unlocked at an ATM using specific steps that vary depending on the machine and country, such as PIN management or PIN operations followed by unblocking the PIN"),
    reason_row(DeclineReason::ConnectionIssue, "CONNECTION_ISSUE", ResponseCode::ISSUER_UNAVAILABLE, "A connection problem occurred during the transaction"),
    reason_row(DeclineReason::ContactlessPinEntryRequired, "CONTACTLESS_PIN_ENTRY_REQUIRED", ResponseCode::EXCEEDS_FREQUENCY_LIMIT, "Contactless payment systems sometimes require a PIN for authentication purposes to protect users' accounts from potential fraud or tampering. In Europe, contactless payment transactions that follow one after the other require PIN verification as an additional security measure"),
    reason_row(DeclineReason::CreditTransactionsNotSupported, "CREDIT_TRANSACTIONS_NOT_SUPPORTED", ResponseCode::NOT_PERMITTED, "Credit is not supported for this specific transaction. Review the Acceptable Use Policy (https://wise.com/gb/legal/acceptable-use-policy-eea) for further information"),
    reason_row(DeclineReason::CumulativeLimitExceeded, "CUMULATIVE_LIMIT_EXCEEDED", ResponseCode::EXCEEDS_LIMIT, "In certain jurisdictions, there are restrictions on the amount that can be spent. Refer to spending limits (https://wise.com/help/articles/2899986/what-are-my-spending-limits) for further details"),
    reason_row(DeclineReason::DeclinedAdvice, "DECLINED_ADVICE", ResponseCode::SYSTEM_ERROR, "There is a problem with the message from the processor, so it might not be accepted because it could be incomplete or unsafe. This does not indicate a problem with the card. Advise the customer that there was a technical issue with the payment and to try again later"),
    reason_row(DeclineReason::IncorrectCvv, "INCORRECT_CVV", ResponseCode::CVV_FAILURE, "The customer entered the wrong security code. Advise the customer to check their card details and try again. If the saved card details are correct, they should remove their card details from the merchant's website and add them back again"),
    reason_row(DeclineReason::IncorrectExpiryDate, "INCORRECT_EXPIRY_DATE", ResponseCode::EXPIRED_CARD, "The customer entered the wrong expiration date for their card. If the saved card details are correct, they should remove their card details from the merchant's website and add them back again"),
    reason_row(DeclineReason::IncorrectPin, "INCORRECT_PIN", ResponseCode::INCORRECT_PIN, "The customer entered their PIN incorrectly. Advise the customer to check their PIN and try again. If the PIN is correct and still fails, suggest resetting the PIN"),
    reason_row(DeclineReason::InsufficientFunds, "INSUFFICIENT_FUNDS", ResponseCode::INSUFFICIENT_FUNDS, "The customer does not have enough money in their account to make the payment. Advise the customer to add money to their account and try again. In most cases, this will resolve the issue"),
    reason_row(DeclineReason::Invalid3dsUcaf, "INVALID_3DS_UCAF", ResponseCode::SECURITY_VIOLATION, "The 3D Secure checks failed during the transaction. The customer should try again and request authentication"),
    reason_row(DeclineReason::IncorrectArqc, "INCORRECT_ARQC", ResponseCode::SECURITY_VIOLATION, "ARQC (Authorization Request Cryptogram) is a cryptogram generated by the card during a transaction, which is validated on the server side. If incorrect, it could indicate a faulty card, a fraudulent attack, or an issue with the POS terminal"),
    reason_row(DeclineReason::IncorrectIcvv, "INCORRECT_ICVV", ResponseCode::SECURITY_VIOLATION, "ICVV (Integrated Circuit Card Verification Value) is a security feature used to validate the authenticity of a card during chip-based transactions. There were problems reading the chip on the card, which may indicate an issue with the card's chip, the terminal, or the transaction process. Wait and try again"),
    reason_row(DeclineReason::InvalidMerchant, "INVALID_MERCHANT", ResponseCode::INVALID_MERCHANT, "Transaction from a specific merchant is declined by scheme. The merchant should clarify the exact cause with the scheme"),
    reason_row(DeclineReason::InvalidTransaction, "INVALID_TRANSACTION", ResponseCode::INVALID_TRANSACTION, "Certain types of transactions are not supported. The customer should ask the merchant to use a different payment method or try a different merchant"),
    reason_row(DeclineReason::MandateDccNonSupportedForCardCountry, "MANDATE_DCC_NON_SUPPORTED_FOR_CARD_COUNTRY", ResponseCode::NOT_PERMITTED, "The transaction was declined because the system does not support conversions for Brazilian cards when BRL is involved. BRL will not be automatically exchanged to other currencies. If the customer wants to continue with the payment, they need to change the currency"),
    reason_row(DeclineReason::MandateLocalCashWithdrawalNotAllowed, "MANDATE_LOCAL_CASH_WITHDRAWAL_NOT_ALLOWED", ResponseCode::NOT_PERMITTED, "ATM withdrawal services are not provided in the country where the transaction is taking place"),
    reason_row(DeclineReason::NonSupportedCurrency, "NON_SUPPORTED_CURRENCY", ResponseCode::NOT_PERMITTED, "The currency in this transaction is not supported"),
    reason_row(DeclineReason::NonSupportedMccForCountry, "NON_SUPPORTED_MCC_FOR_COUNTRY", ResponseCode::NOT_PERMITTED, "Transactions in this category are not supported for customers in the country of purchase. Consider using an alternative payment method or changing merchant"),
    reason_row(DeclineReason::PaymentMethodDailyLimitExceeded, "PAYMENT_METHOD_DAILY_LIMIT_EXCEEDED", ResponseCode::EXCEEDS_LIMIT, "The customer has reached the daily spending limit for the card or their profile. Advise if they would like to update card or profile limit"),
    reason_row(DeclineReason::PaymentMethodLifetimeLimitExceeded, "PAYMENT_METHOD_LIFETIME_LIMIT_EXCEEDED", ResponseCode::EXCEEDS_LIMIT, "The customer has reached the lifetime spending limit. Advise if they would like to increase their lifetime limit"),
    reason_row(DeclineReason::PaymentMethodMonthlyLimitExceeded, "PAYMENT_METHOD_MONTHLY_LIMIT_EXCEEDED", ResponseCode::EXCEEDS_LIMIT, "The customer has reached the monthly spending limit for the card or their profile. Advise if they would like to update card or profile limit"),
    reason_row(DeclineReason::PaymentMethodNotAllowed, "PAYMENT_METHOD_NOT_ALLOWED", ResponseCode::NOT_PERMITTED, "This payment type has been disabled. Advise if they would like to enable the payment type"),
    reason_row(DeclineReason::PaymentMethodTransactionLimitExceeded, "PAYMENT_METHOD_TRANSACTION_LIMIT_EXCEEDED", ResponseCode::EXCEEDS_LIMIT, "The customer has exceeded the transaction limit for the card. Advise if they would like to update their card limit"),
    reason_row(DeclineReason::PinEntryTriesExceeded, "PIN_ENTRY_TRIES_EXCEEDED", ResponseCode::PIN_TRIES_EXCEEDED, "The customer has reached the maximum number of allowed online PIN entry attempts. Consider implementing a reset PIN feature within the app to help the customer regain access to their card"),
    reason_row(DeclineReason::PreActivatedCardPinEntryRequired, "PRE_ACTIVATED_CARD_PIN_ENTRY_REQUIRED", ResponseCode::EXCEEDS_FREQUENCY_LIMIT, "The customer has attempted to make a contactless payment at a POS or ATM, but their card has not been activated for chip and PIN transactions. To modify the card activation strategy for all cards, contact the implementation manager"),
    reason_row(DeclineReason::ProcessingError, "PROCESSING_ERROR", ResponseCode::SYSTEM_ERROR, "The system is currently experiencing technical difficulties. Advise the customer to try again after a brief period"),
    reason_row(DeclineReason::RestrictedMode, "RESTRICTED_MODE", ResponseCode::NOT_PERMITTED, "Although rare, restricted mode can occur. Advise the customer to replace their card promptly as the system should have already informed them. In this mode, more secure payment methods like chip and PIN, contactless, mobile wallets, and online payments with 3DS are allowed, while less secure methods like magnetic stripe and online payments without 3DS are not permitted"),
    reason_row(DeclineReason::ReversalNotMatchingAuthCurrency, "REVERSAL_NOT_MATCHING_AUTH_CURRENCY", ResponseCode::ORIGINAL_AMOUNT_INCORRECT, "The merchant has issued a reversal instruction for a different currency than what was originally requested during the authorization process"),
    reason_row(DeclineReason::ScaSoftDecline, "SCA_SOFT_DECLINE", ResponseCode::AUTHENTICATION_REQUIRED, "The transaction cannot proceed due to SCA regulations. Suggest the customer contact the merchant and use a more secure authentication method such as 3DS. For example, the customer can try chip and PIN, or a mobile wallet like Apple Pay or Google Pay"),
    reason_row(DeclineReason::SchemeBlockedTransaction, "SCHEME_BLOCKED_TRANSACTION", ResponseCode::DO_NOT_HONOUR, "This transaction has been flagged by the scheme and cannot be processed"),
    reason_row(DeclineReason::SecurityCvmFailure, "SECURITY_CVM_FAILURE", ResponseCode::SECURITY_VIOLATION, "The system has detected that the POS terminal was misconfigured and failed security checks. Suggest the customer use an alternative payment method like contactless or mobile wallets, or recommend asking the merchant to accept a signature instead"),
    reason_row(DeclineReason::SecurityMagstripeSecureElementsIncorrectOrMissing, "SECURITY_MAGSTRIPE_SECURE_ELEMENTS_INCORRECT_OR_MISSING", ResponseCode::SECURITY_VIOLATION, "The merchant has entered the wrong type of purchase. Advise the customer to contact the merchant and ask them to correct this issue"),
    reason_row(DeclineReason::SecurityPinEntryRequired, "SECURITY_PIN_ENTRY_REQUIRED", ResponseCode::PIN_REQUIRED, "To proceed with this transaction, the customer is required to enter their PIN"),
    reason_row(DeclineReason::SuspectedFraud, "SUSPECTED_FRAUD", ResponseCode::SUSPECTED_FRAUD, "This transaction has been labeled as high-risk by Wise"),
    reason_row(DeclineReason::SuspectedFraudAml, "SUSPECTED_FRAUD_AML", ResponseCode::SUSPECTED_FRAUD, "This transaction has been flagged as high-risk based on AML compliance protocols. This reason cannot be disclosed to end customers"),
    reason_row(DeclineReason::SuspectedFraudCompliance, "SUSPECTED_FRAUD_COMPLIANCE", ResponseCode::SUSPECTED_FRAUD, "The compliance system has flagged this transaction as high-risk. This reason cannot be disclosed to end customers"),
    reason_row(DeclineReason::SuspectedFraudCoreFraud, "SUSPECTED_FRAUD_CORE_FRAUD", ResponseCode::SUSPECTED_FRAUD, "This transaction has been blocked based on fraud policies and procedures"),
    reason_row(DeclineReason::SuspectedFraudSanctions, "SUSPECTED_FRAUD_SANCTIONS", ResponseCode::SUSPECTED_FRAUD, "This transaction has been flagged as high-risk based on sanctions list analysis. This reason cannot be disclosed to end customers. This classification is final and cannot be appealed"),
    reason_row(DeclineReason::SuspectedFraudSoftDecline, "SUSPECTED_FRAUD_SOFT_DECLINE", ResponseCode::SUSPECTED_FRAUD, "This e-commerce transaction cannot be processed due to high risk factors. The merchant must complete 3DS before the transaction can be approved"),
    reason_row(DeclineReason::TransactionTypeNotSupported, "TRANSACTION_TYPE_NOT_SUPPORTED", ResponseCode::NOT_PERMITTED, "There are restrictions on this type of transaction, and sometimes the scheme will not allow it. Check if spend control is set up to block this transaction"),
    reason_row(DeclineReason::UnexpectedError, "UNEXPECTED_ERROR", ResponseCode::SYSTEM_ERROR, "There may have been a communication error between the merchant's system and the server, but the POS system may have already notified the user of this issue"),
];

struct DetailedRow {
    detailed: DetailedDeclineReason,
    code: &'static str,
    accompanies: &'static [DeclineReason],
    description: &'static str,
}

const fn detailed_row(
    detailed: DetailedDeclineReason,
    code: &'static str,
    accompanies: &'static [DeclineReason],
    description: &'static str,
) -> DetailedRow {
    DetailedRow {
        detailed,
        code,
        accompanies,
        description,
    }
}

/// Every detailed decline reason, in enum order.
const DETAILED_REASONS: [DetailedRow; 21] = [
    detailed_row(DetailedDeclineReason::InsufficientFundsForBlockedSmartConversion, "INSUFFICIENT_FUNDS_FOR_BLOCKED_SMART_CONVERSION", &[DeclineReason::InsufficientFunds], "Transaction was declined due to insufficient balance in transaction currency when smart conversion feature is disabled (e.g. BRL cards). The customer needs to convert their funds to the transaction currency and try again."),
    detailed_row(DetailedDeclineReason::InsufficientFundsForSpecificCurrencyReservation, "INSUFFICIENT_FUNDS_FOR_SPECIFIC_CURRENCY_RESERVATION", &[DeclineReason::InsufficientFunds], "The transaction will be declined with this reason if the customer's card is issued in a region subject to smart conversion limitations, and the transaction currency is the limited currency but the customer doesn't hold enough of that currency. Other currencies won't be automatically converted to the limited currency. The customer needs to convert their funds to the transaction currency before retrying the payment."),
    detailed_row(DetailedDeclineReason::SuspectedFraudNoBalance, "SUSPECTED_FRAUD_NO_BALANCE", &[DeclineReason::SuspectedFraud], "The customer might be abusing merchants by saving a card without having any balance to cover upcoming charges from them. The customer will need to top up their account to cover any charges from the merchant at a later date before re-attempting the transaction."),
    detailed_row(DetailedDeclineReason::ResetYourPinAtAtm, "RESET_YOUR_PIN_AT_ATM", &[DeclineReason::ChipPinEntryTriesExceeded], "There's a problem with how Chip was read and we had to decline the transaction. The customer will need to reset their PIN at an ATM."),
    detailed_row(DetailedDeclineReason::IncorrectCvv2, "INCORRECT_CVV2", &[DeclineReason::IncorrectCvv], "Invalid CVV2 was provided. The customer needs to check their saved card details and if they're correct, they should remove and add their card details to the merchant's website again. If this doesn't help, they could try to use their card at another merchant's website. If the same issue happens, they'll need to order a new card."),
    detailed_row(DetailedDeclineReason::ScaSoftDeclineContactless, "SCA_SOFT_DECLINE_CONTACTLESS", &[DeclineReason::ScaSoftDecline], "Contactless transaction could not be approved due to SCA regulations. The customer should perform at least one PIN transaction or use an ATM to reset PIN."),
    detailed_row(DetailedDeclineReason::SuspectedFraudReviewActivity, "SUSPECTED_FRAUD_REVIEW_ACTIVITY", &[DeclineReason::SuspectedFraud, DeclineReason::CardFrozen], "We couldn't confirm all transactions in the customer's activity were done by them, so we froze their card. The customer should review recent transactions and unfreeze the card."),
    detailed_row(DetailedDeclineReason::InvalidTransactionTypeFinal, "INVALID_TRANSACTION_TYPE_FINAL", &[DeclineReason::InvalidTransaction], "This decline reason is used for unmapped processor or network error codes, indicating an external system issue or unclassified response. The decision authority on the transaction information identifies a SCHEME decline, which may relate to card usage in unsupported countries. The customer will need to use an alternative payment method to complete this transaction."),
    detailed_row(DetailedDeclineReason::InvalidTransactionTypeContactlessMagstripe, "INVALID_TRANSACTION_TYPE_CONTACTLESS_MAGSTRIPE", &[DeclineReason::InvalidTransaction], "The POS terminal used a deprecated and not secure way to transmit card data. The customer will need to use another POS machine or try another payment method (Chip and PIN or Mobile Wallet)."),
    detailed_row(DetailedDeclineReason::InvalidTransactionTypeFallback, "INVALID_TRANSACTION_TYPE_FALLBACK", &[DeclineReason::InvalidTransaction], "The chip couldn't be read due to a technical issue which resulted in the transaction \"falling back\" to magnetic stripe. As damaging the chip (so it would fall back to stripe) is a common way of fraud, these types of transactions are often deemed risky and being blocked. The customer will need to: - Try again or try a different terminal / ATM if it still doesn't work - Use another payment method, e.g. Contactless - Use another card - If the issue persists with multiple terminals, they'll need to replace their card as it may be damaged"),
    detailed_row(DetailedDeclineReason::ContactlessDisabled, "CONTACTLESS_DISABLED", &[DeclineReason::PaymentMethodNotAllowed], "`POS_CONTACTLESS` permission (contactless payments) is disabled. The customer will need to enable the permission to allow contactless transactions."),
    detailed_row(DetailedDeclineReason::EcomDisabled, "ECOM_DISABLED", &[DeclineReason::PaymentMethodNotAllowed], "`ECOM` permission (online payments) is disabled. The customer will need to enable the permission to allow e-commerce transactions."),
    detailed_row(DetailedDeclineReason::ChipDisabled, "CHIP_DISABLED", &[DeclineReason::PaymentMethodNotAllowed], "`POS_CHIP` permission (Chip transactions) is disabled. The customer will need to enable the permission to allow Chip transactions."),
    detailed_row(DetailedDeclineReason::MagstripeDisabled, "MAGSTRIPE_DISABLED", &[DeclineReason::PaymentMethodNotAllowed], "`POS_MAGSTRIPE` permission (magnetic stripe transactions) is disabled. The customer will need to enable the permission to allow magnetic stripe transactions."),
    detailed_row(DetailedDeclineReason::WalletDisabled, "WALLET_DISABLED", &[DeclineReason::PaymentMethodNotAllowed], "`MOBILE_WALLETS` permission is disabled. The customer will need to enable the permission to allow mobile wallet transactions."),
    detailed_row(DetailedDeclineReason::ProfileGeneralDailyLimitExceededChangeable, "PROFILE_GENERAL_DAILY_LIMIT_EXCEEDED_CHANGEABLE", &[DeclineReason::PaymentMethodDailyLimitExceeded], "The customer has reached their daily total account limit (profile-level). The customer will need to edit the limit."),
    detailed_row(DetailedDeclineReason::ProfileGeneralMonthlyLimitExceededChangeable, "PROFILE_GENERAL_MONTHLY_LIMIT_EXCEEDED_CHANGEABLE", &[DeclineReason::PaymentMethodMonthlyLimitExceeded], "The customer has gone over their monthly total account limit (profile-level). The customer will need to edit the limit."),
    detailed_row(DetailedDeclineReason::CardGeneralDailyLimitExceededChangeable, "CARD_GENERAL_DAILY_LIMIT_EXCEEDED_CHANGEABLE", &[DeclineReason::PaymentMethodDailyLimitExceeded], "The customer has reached their daily limit for this card (card-level). The customer will need to edit the limit."),
    detailed_row(DetailedDeclineReason::CardGeneralMonthlyLimitExceededChangeable, "CARD_GENERAL_MONTHLY_LIMIT_EXCEEDED_CHANGEABLE", &[DeclineReason::PaymentMethodMonthlyLimitExceeded], "The customer has gone over the monthly limit for this card (card-level). The customer will need to edit the limit."),
    detailed_row(DetailedDeclineReason::PaymentMethodMaxMonthlyLimitExceeded, "PAYMENT_METHOD_MAX_MONTHLY_LIMIT_EXCEEDED", &[DeclineReason::PaymentMethodMonthlyLimitExceeded], "The card's maximum non-changeable monthly spending limit has been reached. The customer will need to wait until the start of the next calendar month to perform transactions again."),
    detailed_row(DetailedDeclineReason::Unknown, "UNKNOWN", &[DeclineReason::InvalidTransaction, DeclineReason::SchemeBlockedTransaction, DeclineReason::DeclinedAdvice, DeclineReason::ConnectionIssue, DeclineReason::ProcessingError, DeclineReason::UnexpectedError], "This decline reason is used when the processor or network returns an error code that is not mapped to any of our specific detailed decline reasons. This can be caused by various external system issues or unclassified processor responses."),
];

struct CodeRow {
    code: ResponseCode,
    meaning: &'static str,
    why: &'static str,
}

const fn code_row(code: ResponseCode, meaning: &'static str, why: &'static str) -> CodeRow {
    CodeRow { code, meaning, why }
}

/// Every field-39 code cardcore sends, with its meaning and why the reasons that map to it
/// do. ISO 8583:1987 codes are used wherever one says what happened; the scheme codes `1A`,
/// `N7` and `R1` (Visa) where ISO has none.
const RESPONSE_CODES: [CodeRow; 24] = [
    code_row(
        ResponseCode::APPROVED,
        "Approved or completed successfully",
        "Every approval.",
    ),
    code_row(
        ResponseCode::INVALID_MERCHANT,
        "Invalid merchant",
        "The ISO 8583:1987 code says exactly what the reason says.",
    ),
    code_row(
        ResponseCode::DO_NOT_HONOUR,
        "Do not honour",
        "The scheme refused the transaction without saying why; `05` is the generic decline \
         both Visa and Mastercard use for that.",
    ),
    code_row(
        ResponseCode::INVALID_TRANSACTION,
        "Invalid transaction",
        "ISO 8583:1987: a kind of transaction the issuer does not accept. The detailed reasons \
         of `INVALID_TRANSACTION` (chip fallback, contactless magstripe, unmapped network codes) \
         all say that.",
    ),
    code_row(
        ResponseCode::UNKNOWN_CARD,
        "Invalid card number (no such number)",
        "DESIGN.md: an unknown PAN. No transaction is recorded, so there is no decline reason.",
    ),
    code_row(
        ResponseCode::UNKNOWN_ORIGINAL,
        "Unable to locate record on file",
        "DESIGN.md: a reversal or clearing of an unknown original. Nothing is recorded.",
    ),
    code_row(
        ResponseCode::FORMAT_ERROR,
        "Format error",
        "DESIGN.md: a malformed message or a missing mandatory field. No transaction is \
         recorded.",
    ),
    code_row(
        ResponseCode::INSUFFICIENT_FUNDS,
        "Not sufficient funds",
        "DESIGN.md.",
    ),
    code_row(ResponseCode::EXPIRED_CARD, "Expired card", "DESIGN.md."),
    code_row(ResponseCode::INCORRECT_PIN, "Incorrect PIN", "DESIGN.md."),
    code_row(
        ResponseCode::NOT_PERMITTED,
        "Transaction not permitted to cardholder",
        "DESIGN.md for the permission, spend-control and currency reasons. The other reasons \
         here refuse one kind of transaction (ATM PIN change, credit, local cash withdrawal, \
         DCC, an MCC in a country, a less secure method in restricted mode) while the card \
         stays usable for others, which is what `57` says; `62` would tell the terminal that \
         the card itself is restricted.",
    ),
    code_row(
        ResponseCode::SUSPECTED_FRAUD,
        "Suspected fraud",
        "DESIGN.md: `SUSPECTED_FRAUD` and all its variants. The AML, compliance and sanctions \
         variants must not be disclosed to the customer, and `59` says no more than \
         \"suspected fraud\".",
    ),
    code_row(
        ResponseCode::EXCEEDS_LIMIT,
        "Exceeds withdrawal amount limit",
        "DESIGN.md for the four card and profile limit reasons. `CUMULATIVE_LIMIT_EXCEEDED` is \
         a jurisdiction's amount limit, so it gets the same code.",
    ),
    code_row(
        ResponseCode::RESTRICTED_CARD,
        "Restricted card",
        "DESIGN.md for the card and account status reasons. `BLOCKED_COUNTRY`: schemes answer \
         `62` for a card that is restricted in the merchant's country.",
    ),
    code_row(
        ResponseCode::SECURITY_VIOLATION,
        "Security violation",
        "ISO 8583:1987 (Mastercard uses it the same way) for failed card or cardholder \
         authentication data other than the PIN and CVV2: ARQC, iCVV, magstripe secure \
         elements, CVM, 3DS/UCAF. The precise cause stays in the decline reason, off the wire.",
    ),
    code_row(
        ResponseCode::ORIGINAL_AMOUNT_INCORRECT,
        "Original amount incorrect",
        "ISO 8583:1987: a reversal that does not match its original; here its currency \
         differs.",
    ),
    code_row(
        ResponseCode::EXCEEDS_FREQUENCY_LIMIT,
        "Exceeds withdrawal frequency limit",
        "Mastercard and European contactless terminals read `65` on a contactless transaction \
         as \"insert the card and enter the PIN\", which is what both reasons ask for.",
    ),
    code_row(
        ResponseCode::PIN_REQUIRED,
        "PIN data required",
        "DESIGN.md (the Visa code; ISO 8583:1987 reserves `70`).",
    ),
    code_row(
        ResponseCode::PIN_TRIES_EXCEEDED,
        "Allowable number of PIN tries exceeded",
        "DESIGN.md for the online PIN counter. `CHIP_PIN_ENTRY_TRIES_EXCEEDED` is the same \
         condition counted by the chip.",
    ),
    code_row(
        ResponseCode::ISSUER_UNAVAILABLE,
        "Issuer or switch inoperative",
        "ISO 8583:1987: the issuer could not be reached, which is not a refusal; it tells \
         the network that it may stand in and the merchant that it may retry.",
    ),
    code_row(
        ResponseCode::SYSTEM_ERROR,
        "System malfunction",
        "DESIGN.md for `PROCESSING_ERROR`. `DECLINED_ADVICE` and `UNEXPECTED_ERROR` are \
         technical failures too.",
    ),
    code_row(
        ResponseCode::AUTHENTICATION_REQUIRED,
        "Additional customer authentication required",
        "Visa's PSD2 soft decline: the merchant retries with strong customer authentication \
         (3DS, chip and PIN, a wallet). ISO 8583:1987 has no such code.",
    ),
    code_row(
        ResponseCode::CVV_FAILURE,
        "Decline for CVV2 failure",
        "DESIGN.md (the Visa code).",
    ),
    code_row(
        ResponseCode::RECURRING_REVOKED,
        "Revocation of authorisation order",
        "Visa's code for a cardholder who stopped recurring payments to this merchant, which \
         is what `BLOCKED_SUBSCRIPTION` says; it tells the merchant not to retry.",
    ),
];

const fn all_reasons() -> [DeclineReason; DECLINE_REASON_COUNT] {
    let mut out = [DeclineReason::AccountInactive; DECLINE_REASON_COUNT];
    let mut i = 0;
    while i < DECLINE_REASON_COUNT {
        out[i] = REASONS[i].reason;
        i += 1;
    }
    out
}

const fn all_detailed() -> [DetailedDeclineReason; DETAILED_DECLINE_REASON_COUNT] {
    let mut out = [DetailedDeclineReason::Unknown; DETAILED_DECLINE_REASON_COUNT];
    let mut i = 0;
    while i < DETAILED_DECLINE_REASON_COUNT {
        out[i] = DETAILED_REASONS[i].detailed;
        i += 1;
    }
    out
}

// The lookups index the tables by discriminant: each row must sit at its variant's index.
const _: () = {
    let mut i = 0;
    while i < DECLINE_REASON_COUNT {
        assert!(REASONS[i].reason as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < DETAILED_DECLINE_REASON_COUNT {
        assert!(DETAILED_REASONS[i].detailed as usize == i);
        i += 1;
    }
};

// ---------------------------------------------------------------------------------------------
// Serde and text: every code travels as the reference's string in human-readable formats
// (JSON); binary formats (the journal) carry a two-byte number, which encodes without
// formatting or validating text on the decision path.

macro_rules! serde_as_code {
    ($ty:ty, $what:literal, $code:ident, $to_u16:expr, $from_u16:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.$code())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = CodeError;
            fn from_str(text: &str) -> Result<$ty, CodeError> {
                <$ty>::parse(text)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(self.$code())
                } else {
                    let to_u16: fn(&$ty) -> u16 = $to_u16;
                    s.serialize_u16(to_u16(self))
                }
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                if !d.is_human_readable() {
                    let from_u16: fn(u16) -> Option<$ty> = $from_u16;
                    let n = u16::deserialize(d)?;
                    return from_u16(n).ok_or_else(|| {
                        serde::de::Error::custom(format!("{} {n} is not one", $what))
                    });
                }
                struct CodeVisitor;
                impl serde::de::Visitor<'_> for CodeVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$ty, E> {
                        <$ty>::parse(text).map_err(E::custom)
                    }
                }
                d.deserialize_str(CodeVisitor)
            }
        }
    };
}

serde_as_code!(
    DeclineReason,
    "a decline reason code",
    code,
    |r| *r as u16,
    |n| DeclineReason::ALL.get(usize::from(n)).copied()
);
serde_as_code!(
    DetailedDeclineReason,
    "a detailed decline reason code",
    code,
    |r| *r as u16,
    |n| DetailedDeclineReason::ALL.get(usize::from(n)).copied()
);
serde_as_code!(
    ResponseCode,
    "a two-character field-39 code",
    as_str,
    |c| u16::from_be_bytes(c.as_bytes()),
    |n| ResponseCode::from_bytes(n.to_be_bytes()).ok()
);

/// Bounds what an error echoes of a bad input.
const SHOWN_INPUT_MAX_CHARS: usize = 40;

fn shown(text: &str) -> String {
    text.chars().take(SHOWN_INPUT_MAX_CHARS).collect()
}

// ---------------------------------------------------------------------------------------------
// Markdown.

/// The generated document is about 25 KiB; one allocation holds it.
const MARKDOWN_CAPACITY_BYTES: usize = 32 * 1024;

const MARKDOWN_INTRO: &str = "\
# Decline reasons and field-39 codes

Generated from `core/src/decline.rs` by `decline_reasons_markdown()`; do not edit by hand.
Regenerate with `UPDATE_DOCS=1 cargo test -p cardcore-core --test decline_doc`.

A declined transaction carries a decline reason (`declineReason` in the transaction record), \
sometimes a detailed reason (`detailedDeclineReason`), and an ISO 8583 field-39 response code \
on the wire. The decline reason alone decides the field-39 code. Codes and descriptions are \
those of the reference (the Wise card API); links are kept as plain text.

The field-39 codes of the reasons in DESIGN.md's \"Decline reasons on the wire\" table are \
DESIGN.md's. Every other reason gets the ISO 8583:1987 code that says what happened, or a \
scheme code (Visa's `1A`, `N7`, `R1`) where ISO has none; the last table says why.
";

fn push_reasons_table(out: &mut String) {
    out.push_str("\n## Decline reasons\n\n");
    out.push_str("| reason | field 39 | description |\n|---|---|---|\n");
    for row in &REASONS {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} |",
            row.code,
            row.field39.as_str(),
            cell(row.description)
        );
    }
}

fn push_detailed_table(out: &mut String) {
    out.push_str("\n## Detailed decline reasons\n\n");
    out.push_str(
        "The reference does not say which reason each detailed reason accompanies. The pairs \
         below are DESIGN.md's where it names one and otherwise read from the descriptions; \
         `Decline::is_consistent` checks a decline against them.\n\n",
    );
    out.push_str("| detailed reason | accompanies | description |\n|---|---|---|\n");
    for row in &DETAILED_REASONS {
        let reasons: Vec<String> = row.accompanies.iter().map(|r| format!("`{r}`")).collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            row.code,
            reasons.join(", "),
            cell(row.description)
        );
    }
}

fn push_codes_table(out: &mut String) {
    out.push_str("\n## Field-39 codes\n\n");
    out.push_str("| field 39 | meaning | reasons | why |\n|---|---|---|---|\n");
    for row in &RESPONSE_CODES {
        let reasons: Vec<String> = REASONS
            .iter()
            .filter(|r| r.field39 == row.code)
            .map(|r| format!("`{}`", r.code))
            .collect();
        let reasons = if reasons.is_empty() {
            "(none)".to_owned()
        } else {
            reasons.join(", ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            row.code.as_str(),
            row.meaning,
            reasons,
            cell(row.why)
        );
    }
}

/// A table cell cannot hold a `|` or a line break.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// DESIGN.md's "Decline reasons on the wire" table, transcribed.
    const DESIGN_TABLE: &[(&str, &[&str])] = &[
        ("51", &["INSUFFICIENT_FUNDS"]),
        ("54", &["CARD_EXPIRED", "INCORRECT_EXPIRY_DATE"]),
        ("55", &["INCORRECT_PIN"]),
        (
            "57",
            &[
                "PAYMENT_METHOD_NOT_ALLOWED",
                "TRANSACTION_TYPE_NOT_SUPPORTED",
                "NON_SUPPORTED_CURRENCY",
            ],
        ),
        (
            "59",
            &[
                "SUSPECTED_FRAUD",
                "SUSPECTED_FRAUD_AML",
                "SUSPECTED_FRAUD_COMPLIANCE",
                "SUSPECTED_FRAUD_CORE_FRAUD",
                "SUSPECTED_FRAUD_SANCTIONS",
                "SUSPECTED_FRAUD_SOFT_DECLINE",
            ],
        ),
        (
            "61",
            &[
                "PAYMENT_METHOD_TRANSACTION_LIMIT_EXCEEDED",
                "PAYMENT_METHOD_DAILY_LIMIT_EXCEEDED",
                "PAYMENT_METHOD_MONTHLY_LIMIT_EXCEEDED",
                "PAYMENT_METHOD_LIFETIME_LIMIT_EXCEEDED",
            ],
        ),
        (
            "62",
            &[
                "CARD_BLOCKED",
                "CARD_FROZEN",
                "CARD_INACTIVE",
                "CARD_PARTNER_SUSPENDED",
                "ACCOUNT_INACTIVE",
                "ACCOUNT_SUSPENDED",
            ],
        ),
        ("70", &["SECURITY_PIN_ENTRY_REQUIRED"]),
        ("75", &["PIN_ENTRY_TRIES_EXCEEDED"]),
        ("96", &["PROCESSING_ERROR"]),
        ("N7", &["INCORRECT_CVV"]),
    ];

    #[test]
    fn design_table_holds() {
        for &(field39, reasons) in DESIGN_TABLE {
            for &code in reasons {
                let reason = DeclineReason::parse(code).unwrap();
                assert_eq!(reason.field39().as_str(), field39, "{code}");
            }
        }
        let constants = [
            (ResponseCode::APPROVED, "00"),
            (ResponseCode::UNKNOWN_CARD, "14"),
            (ResponseCode::UNKNOWN_ORIGINAL, "25"),
            (ResponseCode::FORMAT_ERROR, "30"),
            (ResponseCode::INSUFFICIENT_FUNDS, "51"),
            (ResponseCode::EXPIRED_CARD, "54"),
            (ResponseCode::INCORRECT_PIN, "55"),
            (ResponseCode::NOT_PERMITTED, "57"),
            (ResponseCode::SUSPECTED_FRAUD, "59"),
            (ResponseCode::EXCEEDS_LIMIT, "61"),
            (ResponseCode::RESTRICTED_CARD, "62"),
            (ResponseCode::PIN_REQUIRED, "70"),
            (ResponseCode::PIN_TRIES_EXCEEDED, "75"),
            (ResponseCode::SYSTEM_ERROR, "96"),
            (ResponseCode::CVV_FAILURE, "N7"),
        ];
        for (code, text) in constants {
            assert_eq!(code.as_str(), text);
            assert_eq!(&code.as_bytes(), text.as_bytes());
        }
    }

    #[test]
    fn every_code_round_trips() {
        for reason in DeclineReason::ALL {
            assert_eq!(DeclineReason::parse(reason.code()), Ok(reason));
            assert_eq!(reason.to_string(), reason.code());
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.code()));
            assert_eq!(
                serde_json::from_str::<DeclineReason>(&json).unwrap(),
                reason
            );
        }
        for detailed in DetailedDeclineReason::ALL {
            assert_eq!(DetailedDeclineReason::parse(detailed.code()), Ok(detailed));
            let json = serde_json::to_string(&detailed).unwrap();
            assert_eq!(
                serde_json::from_str::<DetailedDeclineReason>(&json).unwrap(),
                detailed
            );
        }
        for row in &RESPONSE_CODES {
            assert_eq!(ResponseCode::parse(row.code.as_str()), Ok(row.code));
            let json = serde_json::to_string(&row.code).unwrap();
            assert_eq!(
                serde_json::from_str::<ResponseCode>(&json).unwrap(),
                row.code
            );
        }
    }

    #[test]
    fn codes_are_unique_and_tables_complete() {
        let codes: BTreeSet<&str> = DeclineReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), 52);
        let detailed: BTreeSet<&str> = DetailedDeclineReason::ALL
            .iter()
            .map(|r| r.code())
            .collect();
        assert_eq!(detailed.len(), 21);
        let field39: BTreeSet<ResponseCode> = RESPONSE_CODES.iter().map(|r| r.code).collect();
        assert_eq!(field39.len(), RESPONSE_CODES.len());
    }

    #[test]
    fn every_reason_has_a_documented_decline_code() {
        for reason in DeclineReason::ALL {
            let code = reason.field39();
            assert!(!code.is_approved(), "{reason}");
            assert_ne!(code.description(), "not a code cardcore sends", "{reason}");
            assert!(!reason.description().is_empty(), "{reason}");
            assert!(
                !reason.description().contains("]("),
                "markdown link in {reason}"
            );
        }
        for detailed in DetailedDeclineReason::ALL {
            assert!(!detailed.accompanies().is_empty(), "{detailed}");
            assert!(!detailed.description().is_empty(), "{detailed}");
        }
    }

    #[test]
    fn bare_code_lines_take_the_description_below_them() {
        let check = |code: &str, start: &str| {
            let d = DetailedDeclineReason::parse(code).unwrap();
            assert!(
                d.description().starts_with(start),
                "{code}: {}",
                d.description()
            );
        };
        check("CONTACTLESS_DISABLED", "`POS_CONTACTLESS` permission");
        check("ECOM_DISABLED", "`ECOM` permission");
        check("CHIP_DISABLED", "`POS_CHIP` permission");
        check("MAGSTRIPE_DISABLED", "`POS_MAGSTRIPE` permission");
        check("WALLET_DISABLED", "`MOBILE_WALLETS` permission");
        check("UNKNOWN", "This decline reason is used when the processor");
    }

    #[test]
    fn design_pairs_are_consistent() {
        use DeclineReason as R;
        use DetailedDeclineReason as D;
        let pairs = [
            (R::PaymentMethodNotAllowed, D::EcomDisabled),
            (R::PaymentMethodNotAllowed, D::ChipDisabled),
            (R::PaymentMethodNotAllowed, D::MagstripeDisabled),
            (R::PaymentMethodNotAllowed, D::ContactlessDisabled),
            (R::PaymentMethodNotAllowed, D::WalletDisabled),
            (
                R::PaymentMethodDailyLimitExceeded,
                D::CardGeneralDailyLimitExceededChangeable,
            ),
            (
                R::PaymentMethodMonthlyLimitExceeded,
                D::CardGeneralMonthlyLimitExceededChangeable,
            ),
            (
                R::PaymentMethodDailyLimitExceeded,
                D::ProfileGeneralDailyLimitExceededChangeable,
            ),
            (
                R::PaymentMethodMonthlyLimitExceeded,
                D::ProfileGeneralMonthlyLimitExceededChangeable,
            ),
            (
                R::InsufficientFunds,
                D::InsufficientFundsForBlockedSmartConversion,
            ),
        ];
        for (reason, detailed) in pairs {
            assert!(
                Decline::with_detail(reason, detailed).is_consistent(),
                "{reason} {detailed}"
            );
        }
        assert!(!Decline::with_detail(R::CardFrozen, D::EcomDisabled).is_consistent());
        assert!(Decline::new(R::CardFrozen).is_consistent());
    }

    #[test]
    fn decline_is_small_and_serialises_as_the_reference_does() {
        assert_eq!(std::mem::size_of::<Decline>(), 2);
        let d = Decline::with_detail(
            DeclineReason::PaymentMethodNotAllowed,
            DetailedDeclineReason::EcomDisabled,
        );
        assert_eq!(d.field39(), ResponseCode::NOT_PERMITTED);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"declineReason":"PAYMENT_METHOD_NOT_ALLOWED","detailedDeclineReason":"ECOM_DISABLED"}"#
        );
        assert_eq!(serde_json::from_str::<Decline>(&json).unwrap(), d);
        let bare: Decline = serde_json::from_str(r#"{"declineReason":"CARD_FROZEN"}"#).unwrap();
        assert_eq!(bare, Decline::from(DeclineReason::CardFrozen));
        assert_eq!(bare.field39(), ResponseCode::RESTRICTED_CARD);
    }

    #[test]
    fn bad_codes_are_refused_with_what_was_wrong() {
        assert_eq!(
            DeclineReason::parse("card_frozen"),
            Err(CodeError::UnknownReason("card_frozen".into()))
        );
        assert!(DetailedDeclineReason::parse("").is_err());
        assert!(serde_json::from_str::<DeclineReason>("\"NOPE\"").is_err());
        for bad in ["", "0", "000", "0 ", "é", "-1"] {
            assert!(ResponseCode::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ResponseCode::from_bytes([b'0', 0]).is_err());
        assert_eq!(
            ResponseCode::from_bytes(*b"Z9").unwrap().description(),
            "not a code cardcore sends"
        );
        let long = "X".repeat(1000);
        let err = DeclineReason::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 100, "{err}");
    }

    #[test]
    fn only_approved_is_approved() {
        assert!(ResponseCode::APPROVED.is_approved());
        assert!(RESPONSE_CODES
            .iter()
            .skip(1)
            .all(|row| !row.code.is_approved()));
        assert_eq!(
            format!("{:?}", ResponseCode::CVV_FAILURE),
            "ResponseCode(N7)"
        );
        assert_eq!(ResponseCode::INCORRECT_PIN.description(), "Incorrect PIN");
    }
}

//! One key pair's logged-in session, shared by the Ed25519 and the ECDSA keys of a token: opened
//! at start, used by one signature at a time, and reopened once when a signature fails because
//! the session or the login was lost (a token pulled and put back, a module restarted), so
//! the error a caller sees is the token's own.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::Mutex;

use super::{call, login, Pkcs11Error, Pkcs11Settings};

/// Finds the private key again in a new session, and checks it is still the key opened at the
/// start (same public key); its handle.
pub(crate) type Refind<'a> = &'a dyn Fn(&Session) -> Result<ObjectHandle, Pkcs11Error>;

/// A key pair's token, login and session.
pub(crate) struct KeySession {
    pub(crate) settings: Pkcs11Settings,
    module: Pkcs11,
    pub(crate) slot: Slot,
    pub(crate) token_label: String,
    pin: AuthPin,
    /// The logged-in session and the private key's handle in it; `None` after a failure that
    /// lost them, until the next signature opens another.
    session: Mutex<Option<(Session, ObjectHandle)>>,
}

/// Why one attempt failed.
enum SignFailure {
    /// The session or login is gone: a new session may do.
    SessionLost(Pkcs11Error),
    Other(Pkcs11Error),
}

impl KeySession {
    /// The session `opened` (logged in) with the private key `private` in it.
    pub(crate) fn new(
        settings: &Pkcs11Settings,
        module: Pkcs11,
        slot: Slot,
        token_label: String,
        pin: AuthPin,
        opened: Session,
        private: ObjectHandle,
    ) -> KeySession {
        KeySession {
            settings: settings.clone(),
            module,
            slot,
            token_label,
            pin,
            session: Mutex::new(Some((opened, private))),
        }
    }

    /// Where the key is: module, token and label (never the PIN).
    pub(crate) fn location(&self) -> String {
        format!(
            "PKCS#11 key {:?} in token {:?} (slot {}) of {}",
            self.settings.key_label,
            self.token_label,
            self.slot.id(),
            self.settings.module.display()
        )
    }

    /// `C_Sign` of `data` with `mechanism`, `operation` naming it in errors; one new session
    /// (found again with `refind`) after a lost one. Blocks for the token's call.
    pub(crate) fn sign(
        &self,
        mechanism: &Mechanism<'_>,
        operation: &'static str,
        data: &[u8],
        refind: Refind<'_>,
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let mut session = self.session.lock();
        match self.sign_in(&mut session, mechanism, operation, data, refind) {
            Err(SignFailure::SessionLost(_)) => {
                *session = None;
                match self.sign_in(&mut session, mechanism, operation, data, refind) {
                    Ok(signature) => Ok(signature),
                    Err(SignFailure::SessionLost(error) | SignFailure::Other(error)) => Err(error),
                }
            }
            Err(SignFailure::Other(error)) => Err(error),
            Ok(signature) => Ok(signature),
        }
    }

    fn sign_in(
        &self,
        session: &mut Option<(Session, ObjectHandle)>,
        mechanism: &Mechanism<'_>,
        operation: &'static str,
        data: &[u8],
        refind: Refind<'_>,
    ) -> Result<Vec<u8>, SignFailure> {
        let (open, private) = match session.take() {
            Some(open) => open,
            None => {
                let opened = login(&self.module, self.slot, &self.token_label, &self.pin, false)
                    .map_err(SignFailure::Other)?;
                let private = refind(&opened).map_err(SignFailure::Other)?;
                (opened, private)
            }
        };
        let answer = open.sign(mechanism, private, data);
        *session = Some((open, private));
        answer.map_err(|error| {
            let lost = matches!(
                error,
                CryptokiError::Pkcs11(
                    RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::UserNotLoggedIn
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::ObjectHandleInvalid
                        | RvError::KeyHandleInvalid,
                    _
                )
            );
            let error = call(&self.token_label, operation, error);
            if lost {
                SignFailure::SessionLost(error)
            } else {
                SignFailure::Other(error)
            }
        })
    }
}

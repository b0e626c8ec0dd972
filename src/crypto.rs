//! sr25519 signatures (schnorrkel) with one signing context per domain.
//!
//! Keys come from the OS RNG ([`Keypair::generate`]); only the simulator and tests make them from
//! a seeded generator ([`Keypair::generate_with`]). A [`PublicKey`] is 32 bytes and doubles as an
//! account address. The secret halves are wiped on drop (schnorrkel zeroizes its keys) and never
//! shown by `Debug`; docs/crypto.md has the audit of every crypto call.
//! Signatures made in one [`SigningDomain`] never verify in another, so a signed transaction can
//! never be presented as a signed header or handshake.

use rand_core::{CryptoRng, RngCore};
use schnorrkel::context::attach_rng;
use schnorrkel::{ExpansionMode, MiniSecretKey, signing_context};
use zeroize::Zeroize;

use crate::rng::RngError;

crate::fixed_bytes!(
    /// An sr25519 public key (compressed Ristretto point); also an account address.
    PublicKey,
    32
);

crate::fixed_bytes!(
    /// An sr25519 signature.
    Signature,
    64
);

/// An account address is the account's public key.
pub type Address = PublicKey;

/// The purposes a key signs for; each has its own schnorrkel signing context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningDomain {
    /// Transfer transactions.
    Tx,
    /// Block headers.
    Block,
    /// Proof submissions from a remote miner.
    Proof,
    /// The peer handshake.
    Hello,
}

impl SigningDomain {
    /// The schnorrkel signing context bytes of this domain.
    pub const fn context(self) -> &'static [u8] {
        match self {
            Self::Tx => b"spacetime/tx/v1",
            Self::Block => b"spacetime/block/v1",
            Self::Proof => b"spacetime/proof/v1",
            Self::Hello => b"spacetime/hello/v1",
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid Ristretto point.
    #[error("invalid public key encoding")]
    InvalidPublicKey,
    /// The signature bytes are malformed (non-canonical scalar or missing sr25519 marker).
    #[error("invalid signature encoding")]
    InvalidSignature,
    /// The signature does not match the key and message.
    #[error("signature does not verify")]
    Mismatch,
    /// A batch failed; `index` is the first item that fails on its own.
    #[error("signature {index} of the batch does not verify")]
    BatchItem {
        /// Position of the failing signature in the batch.
        index: usize,
    },
}

/// A signing key pair. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct Keypair {
    secret: MiniSecretKey,
    inner: schnorrkel::Keypair,
}

impl Keypair {
    /// A fresh key pair from the operating system's RNG; panics if the OS has no randomness
    /// to give (see [`Keypair::try_generate`]).
    pub fn generate() -> Self {
        match Self::try_generate() {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        }
    }

    /// A fresh key pair from the operating system's RNG (getrandom), not from any generator
    /// of this process.
    pub fn try_generate() -> Result<Self, RngError> {
        let mut seed = crate::rng::os_bytes32()?;
        let key = Self::from_seed(&seed);
        seed.zeroize();
        Ok(key)
    }

    /// The key pair derived from a 32-byte secret seed (the form stored in key files).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        // A MiniSecretKey accepts any 32 bytes; the length is fixed by the type.
        let secret = match MiniSecretKey::from_bytes(seed) {
            Ok(s) => s,
            Err(e) => unreachable!("a 32-byte mini secret key is always valid: {e}"),
        };
        let inner = secret.expand_to_keypair(ExpansionMode::Ed25519);
        Self { secret, inner }
    }

    /// The 32-byte secret seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.inner.public.to_bytes())
    }

    /// A key pair from a node's generator: from the OS for a real node's generator, from its
    /// stream in the simulator (see [`crate::NodeRng::key_bytes`]).
    pub fn generate_from(rng: &mut crate::NodeRng) -> Result<Self, RngError> {
        let mut seed = rng.key_bytes()?;
        let key = Self::from_seed(&seed);
        seed.zeroize();
        Ok(key)
    }

    /// A key pair from a given generator: for the simulator and tests, whose keys must be a
    /// function of their seed. A real node's keys come from [`Keypair::generate`] or from
    /// [`crate::NodeRng::key_bytes`], which reads the OS for a node's generator.
    pub fn generate_with<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = Self::from_seed(&seed);
        seed.zeroize();
        key
    }

    /// Signs `message` in `domain`, with witness randomness from the operating system.
    pub fn sign(&self, domain: SigningDomain, message: &[u8]) -> Signature {
        let ctx = signing_context(domain.context());
        Signature(self.inner.sign(ctx.bytes(message)).to_bytes())
    }

    /// Signs `message` in `domain` with witness randomness from `rng`. schnorrkel derives the
    /// witness from the secret nonce seed and the whole transcript (context, message, public
    /// key) as well as from 32 bytes of `rng`, so a predictable `rng` (the simulator's) gives
    /// a witness that is still secret and never repeats for two messages.
    pub fn sign_with<R: RngCore + CryptoRng>(
        &self,
        domain: SigningDomain,
        message: &[u8],
        rng: &mut R,
    ) -> Signature {
        let ctx = signing_context(domain.context());
        let transcript = attach_rng(ctx.bytes(message), rng);
        Signature(self.inner.sign(transcript).to_bytes())
    }
}

impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Keypair(public: {})", self.public())
    }
}

fn parse_public(key: &PublicKey) -> Result<schnorrkel::PublicKey, SignatureError> {
    schnorrkel::PublicKey::from_bytes(&key.0).map_err(|_| SignatureError::InvalidPublicKey)
}

fn parse_signature(sig: &Signature) -> Result<schnorrkel::Signature, SignatureError> {
    schnorrkel::Signature::from_bytes(&sig.0).map_err(|_| SignatureError::InvalidSignature)
}

/// Verifies one signature.
pub fn verify(
    domain: SigningDomain,
    key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let key = parse_public(key)?;
    let sig = parse_signature(signature)?;
    key.verify(signing_context(domain.context()).bytes(message), &sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// One item of a batch verification.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// The signer.
    pub key: &'a PublicKey,
    /// The signed bytes.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a Signature,
}

/// Verifies many signatures of one domain at once, much faster per signature than [`verify`].
///
/// On failure it falls back to single verification to name the first bad item, so the cost of
/// locating a culprit is paid only by invalid batches.
pub fn verify_batch(
    domain: SigningDomain,
    items: &[SignedMessage<'_>],
) -> Result<(), SignatureError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let parsed = parse_public(item.key).and_then(|k| Ok((k, parse_signature(item.signature)?)));
        match parsed {
            Ok((k, s)) => {
                keys.push(k);
                sigs.push(s);
            }
            Err(_) => return Err(SignatureError::BatchItem { index }),
        }
    }
    let ctx = signing_context(domain.context());
    let transcripts = items.iter().map(|item| ctx.bytes(item.message));
    if schnorrkel::verify_batch(transcripts, &sigs, &keys, false).is_ok() {
        return Ok(());
    }
    let index = items
        .iter()
        .position(|item| verify(domain, item.key, item.message, item.signature).is_err())
        .unwrap_or(0);
    Err(SignatureError::BatchItem { index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_signatures_repeat_per_seed_and_verify() {
        let kp = Keypair::generate_with(&mut crate::NodeRng::from_u64(1));
        let again = Keypair::generate_with(&mut crate::NodeRng::from_u64(1));
        assert_eq!(kp.public(), again.public());
        let sign = |seed| {
            kp.sign_with(
                SigningDomain::Block,
                b"m",
                &mut crate::NodeRng::from_u64(seed),
            )
        };
        assert_eq!(sign(5), sign(5));
        assert_ne!(sign(5), sign(6));
        assert_eq!(
            verify(SigningDomain::Block, &kp.public(), b"m", &sign(5)),
            Ok(())
        );
    }

    #[test]
    fn sign_and_verify() {
        let kp = Keypair::generate();
        let sig = kp.sign(SigningDomain::Tx, b"hello");
        assert_eq!(
            verify(SigningDomain::Tx, &kp.public(), b"hello", &sig),
            Ok(())
        );
        assert_eq!(
            verify(SigningDomain::Tx, &kp.public(), b"hellO", &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn domains_do_not_cross() {
        let kp = Keypair::generate();
        let sig = kp.sign(SigningDomain::Tx, b"m");
        for other in [
            SigningDomain::Block,
            SigningDomain::Proof,
            SigningDomain::Hello,
        ] {
            assert_eq!(
                verify(other, &kp.public(), b"m", &sig),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn os_keys_are_fresh() {
        let a = Keypair::try_generate().unwrap();
        let b = Keypair::try_generate().unwrap();
        assert_ne!(a.seed(), b.seed());
        assert_ne!(a.seed(), [0; 32]);
    }

    #[test]
    fn node_generator_keys_differ_for_one_seed_in_production_only() {
        let root = crate::NodeRng::from_os().unwrap();
        let a = Keypair::generate_from(&mut root.derive("miner-key")).unwrap();
        let b = Keypair::generate_from(&mut root.derive("miner-key")).unwrap();
        assert_ne!(a.public(), b.public());
        let sim = crate::NodeRng::from_u64(4);
        let a = Keypair::generate_from(&mut sim.derive("miner-key")).unwrap();
        let b = Keypair::generate_from(&mut sim.derive("miner-key")).unwrap();
        assert_eq!(a.public(), b.public());
        // The same key the simulator made before keys had their own source.
        let old = Keypair::generate_with(&mut sim.derive("miner-key"));
        assert_eq!(a.public(), old.public());
    }

    #[test]
    fn debug_of_a_key_shows_only_the_public_half() {
        let kp = Keypair::from_seed(&[0x5a; 32]);
        let shown = format!("{kp:?} {kp:#?}");
        assert_eq!(
            format!("{kp:?}"),
            format!("Keypair(public: {})", kp.public())
        );
        for secret in [kp.seed().to_vec(), kp.inner.secret.to_bytes().to_vec()] {
            assert!(!shown.contains(&crate::bytes::to_hex(&secret)), "{shown}");
            assert!(!shown.contains(&format!("{secret:?}")), "{shown}");
        }
        assert!(!shown.contains("90, 90"), "{shown}");
    }

    #[test]
    fn keys_are_fresh_and_seed_is_deterministic() {
        let a = Keypair::generate();
        let b = Keypair::generate();
        assert_ne!(a.public(), b.public());
        assert_eq!(Keypair::from_seed(&a.seed()).public(), a.public());
        assert!(!format!("{a:?}").contains(&crate::bytes::to_hex(&a.seed())));
    }

    #[test]
    fn malformed_keys_and_signatures_are_errors() {
        let kp = Keypair::generate();
        let sig = kp.sign(SigningDomain::Tx, b"m");
        // 0xff.. is not a canonical Ristretto encoding.
        let bad_key = PublicKey([0xff; 32]);
        assert_eq!(
            verify(SigningDomain::Tx, &bad_key, b"m", &sig),
            Err(SignatureError::InvalidPublicKey)
        );
        let mut bad_sig = sig;
        bad_sig.0[63] &= 0x7f; // clear the sr25519 marker bit
        assert_eq!(
            verify(SigningDomain::Tx, &kp.public(), b"m", &bad_sig),
            Err(SignatureError::InvalidSignature)
        );
    }

    #[test]
    fn batch_accepts_good_and_names_the_bad_one() {
        let keys: Vec<Keypair> = (0..8).map(|_| Keypair::generate()).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let pubs: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let mut sigs: Vec<Signature> = keys
            .iter()
            .zip(&msgs)
            .map(|(k, m)| k.sign(SigningDomain::Tx, m))
            .collect();
        let items = |sigs: &[Signature]| -> Vec<(PublicKey, Vec<u8>, Signature)> {
            pubs.iter()
                .zip(&msgs)
                .zip(sigs)
                .map(|((p, m), s)| (*p, m.clone(), *s))
                .collect()
        };
        let check = |owned: &[(PublicKey, Vec<u8>, Signature)]| {
            let batch: Vec<SignedMessage<'_>> = owned
                .iter()
                .map(|(key, message, signature)| SignedMessage {
                    key,
                    message,
                    signature,
                })
                .collect();
            verify_batch(SigningDomain::Tx, &batch)
        };
        assert_eq!(check(&items(&sigs)), Ok(()));
        sigs.swap(5, 6);
        assert_eq!(
            check(&items(&sigs)),
            Err(SignatureError::BatchItem { index: 5 })
        );
        assert_eq!(verify_batch(SigningDomain::Tx, &[]), Ok(()));
    }
}

//! The one wrapper over the crypto crate (dryoc, pinned): curve25519 key pairs, precomputed
//! shared keys (`crypto_box_beforenm`), xsalsa20poly1305 boxes with a precomputed or random
//! key, and random bytes from the OS. Nothing else in the engine names dryoc, so changing
//! or auditing the crypto means reading this file.
//!
//! Boxes use NaCl's "easy" layout, which is what CurveZMQ puts on the wire: a 16-byte MAC,
//! then the ciphertext, as long as the plaintext. A box made with a precomputed key
//! (`crypto_box_afternm`) and one made with a secret key (`crypto_secretbox`) are the same
//! computation, so one key type, [`BoxKey`], serves both the curve25519 shared keys and the
//! server's random cookie key.
//!
//! Secret keys and shared keys are wiped when dropped. What dryoc copies internally (it
//! returns a precomputed key by value) is outside our reach.

use std::fmt;

use dryoc::classic::crypto_box::{
    crypto_box_beforenm, crypto_box_detached_afternm, crypto_box_detached_afternm_inplace,
    crypto_box_keypair_inplace, crypto_box_open_detached_afternm,
    crypto_box_open_detached_afternm_inplace,
};
use dryoc::classic::crypto_core::crypto_scalarmult_base;
use zeroize::Zeroize;

use crate::{Code, Error};

/// Length of a curve25519 public or secret key, and of a precomputed shared key.
pub const KEY_LEN: usize = 32;
/// Length of a box nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a box's MAC, the bytes a box adds to its plaintext.
pub const MAC_LEN: usize = 16;

/// A 24-byte box nonce.
pub type Nonce = [u8; NONCE_LEN];

/// A curve25519 public key. Public, so freely copied and printed (as Z85).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PublicKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The 40-character Z85 text of the key (rfc 32), as libzmq and zeromq.js print keys.
    pub fn to_z85(&self) -> String {
        super::z85::encode_key(&self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_z85())
    }
}

/// A curve25519 secret key, wiped on drop and never printed.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl SecretKey {
    /// Takes the 32 bytes as the key. The caller should wipe its own copy.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The public key of this secret key (curve25519 scalar multiplication of the base
    /// point, with the usual clamping).
    pub fn public_key(&self) -> PublicKey {
        let mut public = [0u8; KEY_LEN];
        crypto_scalarmult_base(&mut public, &self.0);
        PublicKey(public)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A long-term or short-term key pair: the public key and its secret key.
#[derive(Clone, Debug)]
pub struct KeyPair {
    public: PublicKey,
    secret: SecretKey,
}

impl KeyPair {
    /// A fresh key pair from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut public = [0u8; KEY_LEN];
        let mut secret = SecretKey([0u8; KEY_LEN]);
        crypto_box_keypair_inplace(&mut public, &mut secret.0);
        KeyPair {
            public: PublicKey(public),
            secret,
        }
    }

    /// The key pair of `secret`, its public key derived from it (what a CURVE server needs:
    /// libzmq takes only its secret key).
    pub fn from_secret(secret: SecretKey) -> Self {
        KeyPair {
            public: secret.public_key(),
            secret,
        }
    }

    /// A key pair given as both halves (what a CURVE client is configured with). Refused
    /// with `EINVAL` unless `public` is the public key of `secret`: with a mismatched pair
    /// the server would drop every handshake without saying why.
    pub fn new(public: PublicKey, secret: SecretKey) -> Result<Self, Error> {
        if !ct_eq(secret.public_key().as_bytes(), public.as_bytes()) {
            return Err(Error::new(
                Code::Inval,
                "CURVE public key does not belong to the secret key",
            ));
        }
        Ok(KeyPair { public, secret })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }
}

/// A symmetric box key: either a curve25519 shared key precomputed from one side's public
/// key and the other's secret key ([`BoxKey::precompute`]), or a random key
/// ([`BoxKey::random`], the server's cookie key). Wiped on drop and never printed.
pub struct BoxKey([u8; KEY_LEN]);

impl Drop for BoxKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A box failed to open: wrong key, wrong nonce, or any bit of it changed. Deliberately
/// carries no detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError;

/// The peer's public key is one of the few low-order curve25519 points, whose shared key
/// with any secret key is known to everyone (all zeros); libsodium refuses them too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowOrderKey;

impl BoxKey {
    /// `crypto_box_beforenm(their_public, our_secret)`: the key both sides of a
    /// `crypto_box` share, computed once so that each box afterwards costs only the
    /// symmetric cipher.
    pub fn precompute(
        their_public: &PublicKey,
        our_secret: &SecretKey,
    ) -> Result<Self, LowOrderKey> {
        let key = crypto_box_beforenm(&their_public.0, &our_secret.0).map_err(|_| LowOrderKey)?;
        Ok(BoxKey(key))
    }

    /// A second copy of the key, for a connection whose reader and writer each hold one
    /// (both are wiped on drop).
    pub(crate) fn duplicate(&self) -> Self {
        BoxKey(self.0)
    }

    /// A random key from the OS random number generator.
    pub fn random() -> Self {
        let mut key = BoxKey([0u8; KEY_LEN]);
        random_bytes(&mut key.0);
        key
    }

    /// Boxes `plain` into `out` (`plain.len() + MAC_LEN` bytes: the MAC, then the
    /// ciphertext). Panics if `out` has another length: sizes are ours, never the peer's.
    pub fn seal_into(&self, nonce: &Nonce, plain: &[u8], out: &mut [u8]) {
        assert_eq!(out.len(), plain.len() + MAC_LEN, "box output size");
        let (mac, ciphertext) = split_mac(out);
        // Infallible here: the lengths are checked above and far below dryoc's maximum.
        let sealed = crypto_box_detached_afternm(ciphertext, mac, plain, nonce, &self.0);
        debug_assert!(sealed.is_ok());
    }

    /// Boxes in place: `buf[MAC_LEN..]` holds the plaintext on entry and the ciphertext on
    /// return, and the MAC is written to `buf[..MAC_LEN]`. Panics if `buf` is shorter than
    /// a MAC.
    pub fn seal_in_place(&self, nonce: &Nonce, buf: &mut [u8]) {
        let (mac, data) = split_mac(buf);
        crypto_box_detached_afternm_inplace(data, mac, nonce, &self.0);
    }

    /// Opens the box `boxed` (MAC then ciphertext) into `out`, which must be
    /// `boxed.len() - MAC_LEN` bytes. A box shorter than a MAC, or a wrong `out` size, is an
    /// error like any box that does not open; nothing is written to `out` unless the MAC
    /// is right.
    pub fn open_into(&self, nonce: &Nonce, boxed: &[u8], out: &mut [u8]) -> Result<(), OpenError> {
        let Some((mac, ciphertext)) = boxed.split_first_chunk::<MAC_LEN>() else {
            return Err(OpenError);
        };
        if out.len() != ciphertext.len() {
            return Err(OpenError);
        }
        crypto_box_open_detached_afternm(out, ciphertext, mac, nonce, &self.0)
            .map_err(|_| OpenError)
    }

    /// Opens in place: `buf` holds the MAC then the ciphertext; on success `buf[MAC_LEN..]`
    /// holds the plaintext. On failure `buf` is unchanged.
    pub fn open_in_place(&self, nonce: &Nonce, buf: &mut [u8]) -> Result<(), OpenError> {
        let Some((mac, data)) = buf.split_first_chunk_mut::<MAC_LEN>() else {
            return Err(OpenError);
        };
        let mac = *mac;
        crypto_box_open_detached_afternm_inplace(data, &mac, nonce, &self.0).map_err(|_| OpenError)
    }

    /// Boxes `plain` into a new vector (MAC then ciphertext).
    pub fn seal(&self, nonce: &Nonce, plain: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; plain.len() + MAC_LEN];
        self.seal_into(nonce, plain, &mut out);
        out
    }

    /// Opens `boxed` into a new vector.
    pub fn open(&self, nonce: &Nonce, boxed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let len = boxed.len().checked_sub(MAC_LEN).ok_or(OpenError)?;
        let mut out = vec![0u8; len];
        self.open_into(nonce, boxed, &mut out)?;
        Ok(out)
    }

    /// The raw key, for the cross-checks against libsodium.
    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A key from known bytes, for tests that need both ends of a session.
    #[cfg(test)]
    pub(crate) fn from_test_bytes(bytes: [u8; KEY_LEN]) -> Self {
        BoxKey(bytes)
    }
}

impl fmt::Debug for BoxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxKey(..)")
    }
}

fn split_mac(buf: &mut [u8]) -> (&mut [u8; MAC_LEN], &mut [u8]) {
    let (mac, rest) = buf
        .split_first_chunk_mut::<MAC_LEN>()
        .expect("a box buffer holds at least a MAC");
    (mac, rest)
}

/// Fills `buf` from the operating system's random number generator (panics only if the
/// OS cannot provide randomness, where no key could be made either).
pub fn random_bytes(buf: &mut [u8]) {
    dryoc::rng::copy_randombytes(buf);
}

/// Compares two equal-length byte strings without branching on their contents.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the comparison from being turned back into an early exit.
    std::hint::black_box(diff) == 0
}

/// Public keys that are low-order curve25519 points (and non-canonical encodings of
/// them): each makes every shared key all zeros, and [`BoxKey::precompute`] refuses them.
/// For tests of that refusal.
pub const LOW_ORDER_POINTS: [[u8; 32]; 7] = [
    [0; 32],
    {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    },
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(byte: u8) -> Nonce {
        [byte; NONCE_LEN]
    }

    #[test]
    fn both_sides_precompute_the_same_key_and_boxes_open() {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let ab = BoxKey::precompute(b.public(), a.secret()).unwrap();
        let ba = BoxKey::precompute(a.public(), b.secret()).unwrap();
        assert_eq!(ab.as_bytes(), ba.as_bytes());
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 1000, 70_000] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let boxed = ab.seal(&nonce(7), &plain);
            assert_eq!(boxed.len(), len + MAC_LEN);
            assert_eq!(ba.open(&nonce(7), &boxed).unwrap(), plain);
            // In place gives the same bytes.
            let mut buf = vec![0u8; MAC_LEN];
            buf.extend_from_slice(&plain);
            ab.seal_in_place(&nonce(7), &mut buf);
            assert_eq!(buf, boxed);
            ba.open_in_place(&nonce(7), &mut buf).unwrap();
            assert_eq!(&buf[MAC_LEN..], &plain[..]);
        }
    }

    #[test]
    fn any_flipped_bit_or_other_nonce_or_key_fails_to_open() {
        let key = BoxKey::random();
        let boxed = key.seal(&nonce(1), b"attack at dawn");
        for i in 0..boxed.len() * 8 {
            let mut bad = boxed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(key.open(&nonce(1), &bad), Err(OpenError), "bit {i}");
            let before = bad.clone();
            assert_eq!(key.open_in_place(&nonce(1), &mut bad), Err(OpenError));
            assert_eq!(bad, before, "a failed open must leave the buffer alone");
        }
        assert_eq!(key.open(&nonce(2), &boxed), Err(OpenError));
        assert_eq!(BoxKey::random().open(&nonce(1), &boxed), Err(OpenError));
        assert_eq!(key.open(&nonce(1), &boxed[..MAC_LEN - 1]), Err(OpenError));
        assert_eq!(key.open(&nonce(1), &[]), Err(OpenError));
        let mut short = [0u8; 3];
        assert_eq!(key.open_in_place(&nonce(1), &mut short), Err(OpenError));
        let mut wrong_out = [0u8; 3];
        assert_eq!(
            key.open_into(&nonce(1), &boxed, &mut wrong_out),
            Err(OpenError)
        );
    }

    #[test]
    fn low_order_public_keys_are_refused() {
        let ours = KeyPair::generate();
        for (i, point) in LOW_ORDER_POINTS.iter().enumerate() {
            let r = BoxKey::precompute(&PublicKey::from_bytes(*point), ours.secret());
            assert_eq!(r.err(), Some(LowOrderKey), "point {i}");
        }
    }

    #[test]
    fn key_pairs_are_fresh_and_consistent() {
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        assert_ne!(a.public(), b.public());
        assert_eq!(a.secret().public_key(), *a.public());
        let again = KeyPair::from_secret(a.secret().clone());
        assert_eq!(again.public(), a.public());
        KeyPair::new(*a.public(), a.secret().clone()).unwrap();
        let err = KeyPair::new(*b.public(), a.secret().clone()).unwrap_err();
        assert_eq!(err.code, Code::Inval);
    }

    #[test]
    fn secrets_are_not_printed() {
        let pair = KeyPair::generate();
        let text = format!("{pair:?} {:?}", BoxKey::random());
        assert!(
            text.contains("SecretKey(..)") && text.contains("BoxKey(..)"),
            "{text}"
        );
        assert!(text.contains(&pair.public().to_z85()));
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    /// The same operations computed by libsodium (through its C library, an independent
    /// implementation) give the same bytes: shared keys, public keys, boxes of every size
    /// from empty to 1 MiB, and the same refusals.
    #[cfg(unix)]
    mod libsodium {
        use super::*;
        use libsodium_sys as sodium;

        fn init() {
            // SAFETY: sodium_init has no preconditions and may be called any number of
            // times, from any thread; it returns -1 only if libsodium cannot work at all.
            let rc = unsafe { sodium::sodium_init() };
            assert!(rc >= 0, "sodium_init failed");
        }

        fn sodium_beforenm(public: &[u8; 32], secret: &[u8; 32]) -> Option<[u8; 32]> {
            let mut k = [0u8; 32];
            // SAFETY: all three pointers are to 32-byte arrays, the sizes libsodium reads
            // and writes for crypto_box_beforenm.
            let rc = unsafe {
                sodium::crypto_box_beforenm(k.as_mut_ptr(), public.as_ptr(), secret.as_ptr())
            };
            (rc == 0).then_some(k)
        }

        fn sodium_box_afternm(key: &[u8; 32], nonce: &Nonce, plain: &[u8]) -> Vec<u8> {
            let mut out = vec![0u8; plain.len() + MAC_LEN];
            // SAFETY: `out` has room for the MAC plus `plain.len()` bytes, as
            // crypto_box_easy_afternm writes; nonce and key are 24 and 32 bytes.
            let rc = unsafe {
                sodium::crypto_box_easy_afternm(
                    out.as_mut_ptr(),
                    plain.as_ptr(),
                    plain.len() as u64,
                    nonce.as_ptr(),
                    key.as_ptr(),
                )
            };
            assert_eq!(rc, 0);
            out
        }

        fn sodium_secretbox(key: &[u8; 32], nonce: &Nonce, plain: &[u8]) -> Vec<u8> {
            let mut out = vec![0u8; plain.len() + MAC_LEN];
            // SAFETY: as above, for crypto_secretbox_easy.
            let rc = unsafe {
                sodium::crypto_secretbox_easy(
                    out.as_mut_ptr(),
                    plain.as_ptr(),
                    plain.len() as u64,
                    nonce.as_ptr(),
                    key.as_ptr(),
                )
            };
            assert_eq!(rc, 0);
            out
        }

        fn sodium_open_afternm(key: &[u8; 32], nonce: &Nonce, boxed: &[u8]) -> Option<Vec<u8>> {
            let mut out = vec![0u8; boxed.len().checked_sub(MAC_LEN)?];
            // SAFETY: `out` has room for the plaintext, `boxed.len() - MAC_LEN` bytes, as
            // crypto_box_open_easy_afternm writes; nonce and key are 24 and 32 bytes.
            let rc = unsafe {
                sodium::crypto_box_open_easy_afternm(
                    out.as_mut_ptr(),
                    boxed.as_ptr(),
                    boxed.len() as u64,
                    nonce.as_ptr(),
                    key.as_ptr(),
                )
            };
            (rc == 0).then_some(out)
        }

        fn sodium_keypair() -> ([u8; 32], [u8; 32]) {
            let (mut pk, mut sk) = ([0u8; 32], [0u8; 32]);
            // SAFETY: both pointers are to 32-byte arrays, as crypto_box_keypair writes.
            let rc = unsafe { sodium::crypto_box_keypair(pk.as_mut_ptr(), sk.as_mut_ptr()) };
            assert_eq!(rc, 0);
            (pk, sk)
        }

        /// A deterministic byte generator, so that a failure can be replayed.
        struct XorShift(u64);
        impl XorShift {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            }
            fn fill(&mut self, buf: &mut [u8]) {
                for chunk in buf.chunks_mut(8) {
                    let v = self.next().to_le_bytes();
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
            }
        }

        #[test]
        fn shared_keys_and_public_keys_match_libsodium() {
            init();
            for _ in 0..50 {
                // Keys made by each library, used by the other.
                let ours = KeyPair::generate();
                let (their_pk, their_sk) = sodium_keypair();
                let their_secret = SecretKey::from_bytes(their_sk);
                assert_eq!(their_secret.public_key().as_bytes(), &their_pk);
                let k1 =
                    BoxKey::precompute(&PublicKey::from_bytes(their_pk), ours.secret()).unwrap();
                assert_eq!(
                    Some(*k1.as_bytes()),
                    sodium_beforenm(&their_pk, ours.secret().as_bytes())
                );
                let k2 = BoxKey::precompute(ours.public(), &their_secret).unwrap();
                assert_eq!(k1.as_bytes(), k2.as_bytes());
            }
        }

        #[test]
        fn low_order_refusals_match_libsodium() {
            init();
            let ours = KeyPair::generate();
            for point in LOW_ORDER_POINTS {
                assert_eq!(sodium_beforenm(&point, ours.secret().as_bytes()), None);
                assert!(BoxKey::precompute(&PublicKey::from_bytes(point), ours.secret()).is_err());
            }
        }

        #[test]
        fn boxes_match_libsodium_from_0_bytes_to_1_mib() {
            init();
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            let mut sizes: Vec<usize> = vec![0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256];
            sizes.extend([1023, 1024, 4096, 65535, 65536, 65537, 1 << 20]);
            for _ in 0..40 {
                sizes.push((rng.next() % 100_000) as usize);
            }
            let a = KeyPair::generate();
            let b = KeyPair::generate();
            let shared = BoxKey::precompute(b.public(), a.secret()).unwrap();
            for &len in &sizes {
                let mut plain = vec![0u8; len];
                rng.fill(&mut plain);
                let mut nonce = [0u8; NONCE_LEN];
                rng.fill(&mut nonce);
                // Shared-key boxes (crypto_box_easy_afternm).
                let ours = shared.seal(&nonce, &plain);
                assert_eq!(
                    ours,
                    sodium_box_afternm(shared.as_bytes(), &nonce, &plain),
                    "len {len}"
                );
                assert_eq!(
                    sodium_open_afternm(shared.as_bytes(), &nonce, &ours).as_deref(),
                    Some(&plain[..])
                );
                // Random-key boxes (crypto_secretbox_easy), as the cookie uses.
                let cookie_key = BoxKey::random();
                let sealed = cookie_key.seal(&nonce, &plain);
                assert_eq!(
                    sealed,
                    sodium_secretbox(cookie_key.as_bytes(), &nonce, &plain)
                );
                // libsodium's boxes open with ours, and a tampered one with neither.
                let theirs = sodium_box_afternm(shared.as_bytes(), &nonce, &plain);
                assert_eq!(shared.open(&nonce, &theirs).unwrap(), plain);
                let mut bad = theirs;
                let at = (rng.next() as usize) % bad.len();
                bad[at] ^= 0x20;
                assert!(shared.open(&nonce, &bad).is_err());
                assert!(sodium_open_afternm(shared.as_bytes(), &nonce, &bad).is_none());
            }
        }
    }
}

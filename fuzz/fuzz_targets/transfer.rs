//! Transfers: canonical decoding, and the stateless checks a mempool runs never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::{Amount, ChainId, Transfer, encode};
use spacetime_fuzz::decode_canonical;

fuzz_target!(|data: &[u8]| {
    let Some(transfer) = decode_canonical::<Transfer>(data) else {
        return;
    };
    assert_eq!(transfer.signing_bytes(), encode(&transfer.unsigned));
    let _ = transfer.id();
    let debit = transfer.total_debit();
    assert_eq!(
        debit.as_ref().ok(),
        transfer.amount.checked_add(transfer.fee).as_ref()
    );
    let own = transfer.check_well_formed(transfer.chain_id);
    assert_eq!(
        own.is_ok(),
        transfer.amount != Amount::ZERO && debit.is_ok(),
        "well-formedness on its own chain"
    );
    let other = ChainId(transfer.chain_id.0.wrapping_add(1));
    assert!(
        transfer.check_well_formed(other).is_err(),
        "accepted on another chain"
    );
});

//! The Hello: its payload decodes canonically, and `check_hello` accepts exactly the Hellos of
//! our network, of a version we speak, claiming the proven node id, from another node.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacetime::Hash;
use spacetime::wire::{
    DisconnectReason, LocalHello, MIN_PROTOCOL_VERSION, Message, MessageKind, check_hello,
    negotiated_version,
};
use spacetime_fuzz::{SESSION_LOCAL_NODE_ID, SESSION_NETWORK_ID, SESSION_REMOTE_NODE_ID};

fuzz_target!(|data: &[u8]| {
    // The input is a Hello's body: the type byte is prepended, so every input is a Hello attempt.
    let mut payload = Vec::with_capacity(data.len() + 1);
    payload.push(MessageKind::Hello.tag());
    payload.extend_from_slice(data);
    let Some(message) = spacetime_fuzz::decode_canonical::<Message>(&payload) else {
        return;
    };
    let Message::Hello(hello) = message else {
        panic!(
            "a payload with the Hello type byte decoded as {:?}",
            message.kind()
        );
    };
    let local = LocalHello {
        network_id: SESSION_NETWORK_ID,
        node_id: SESSION_LOCAL_NODE_ID,
    };
    // Judge it as the Hello of the peer the handshake proved, and of a peer claiming it.
    for proven in [
        SESSION_REMOTE_NODE_ID,
        hello.node_id,
        SESSION_LOCAL_NODE_ID,
        Hash::ZERO,
    ] {
        let verdict = check_hello(&local, &hello, &proven);
        let expected = if hello.network_id != local.network_id {
            Err(DisconnectReason::WrongNetwork)
        } else if hello.protocol_version < MIN_PROTOCOL_VERSION {
            Err(DisconnectReason::IncompatibleVersion)
        } else if hello.node_id != proven {
            Err(DisconnectReason::ProtocolViolation)
        } else if hello.node_id == local.node_id {
            Err(DisconnectReason::SelfConnection)
        } else {
            Ok(())
        };
        assert_eq!(verdict, expected);
    }
    let v = negotiated_version(spacetime::wire::PROTOCOL_VERSION, hello.protocol_version);
    assert!(v <= hello.protocol_version && v <= spacetime::wire::PROTOCOL_VERSION);
    assert!(hello.user_agent.len() <= spacetime::wire::MAX_USER_AGENT_BYTES);
});

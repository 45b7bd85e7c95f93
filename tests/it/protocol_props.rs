//! Property tests of request decoding in-process: arbitrary bytes after a header of every
//! advertised API and version decode or fail, never panic (or abort on a forged length).

use bytes::{BufMut, Bytes, BytesMut};
use kairos::protocol::decode_request;
use kairos::protocol::versions::SUPPORTED_APIS;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn arbitrary_bodies_never_panic(
        api in 0..SUPPORTED_APIS.len(),
        version_pick in any::<u8>(),
        rest in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let (key, range) = SUPPORTED_APIS[api];
        let span = i16::from(version_pick) % (range.max - range.min + 1);
        let mut frame = BytesMut::new();
        frame.put_i16(key as i16);
        frame.put_i16(range.min + span);
        frame.put_i32(1);
        frame.put_slice(&rest);
        let _ = decode_request(frame.freeze());
    }

    #[test]
    fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_request(Bytes::from(bytes));
    }
}

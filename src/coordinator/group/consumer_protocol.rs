//! Reading the consumer protocol's subscription metadata inside classic-group JoinGroup
//! requests (`ConsumerProtocolSubscription`: an `int16` version, then the struct). The
//! coordinator needs it for one thing: OffsetDelete must refuse topics a member subscribes to.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

/// The topics in a subscription, or `None` if the bytes do not parse (then the caller must
/// assume the worst: any topic may be subscribed).
#[must_use]
pub fn subscribed_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    // Newer versions only append fields (Kafka reads them with the highest version it knows).
    let version = version.clamp(0, 3);
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(
        subscription
            .topics
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn reads_topics_of_every_version() {
        for version in 0..=3 {
            let subscription = ConsumerProtocolSubscription::default().with_topics(vec![
                StrBytes::from_static_str("a"),
                StrBytes::from_static_str("b"),
            ]);
            let mut buf = BytesMut::new();
            buf.put_i16(version);
            subscription.encode(&mut buf, version).unwrap();
            assert_eq!(
                subscribed_topics(&buf.freeze()),
                Some(vec!["a".to_owned(), "b".to_owned()])
            );
        }
        assert_eq!(subscribed_topics(&Bytes::from_static(&[0])), None);
    }
}

from collections.abc import Buffer

MAX_CSRC: int
ONE_BYTE_PROFILE: int
TWO_BYTE_PROFILE: int

# RTP (mediacore.rtp wraps these)
def rtp_parse(
    data: Buffer,
) -> tuple[int, bool, bool, bool, int, int, int, int, tuple[int, ...], bytes, int, bytes, int]: ...
def rtp_serialize(
    marker: bool,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    csrc: list[int],
    payload: Buffer,
    extension: bool,
    extension_profile: int,
    extension_data: Buffer,
    padding_size: int,
) -> bytes: ...
def rtp_elements(profile: int, data: Buffer) -> list[tuple[int, bytes]]: ...
def rtp_write_elements(elements: list[tuple[int, bytes]]) -> tuple[int, bytes]: ...
def rtp_reserialize_many(packets: list[Buffer]) -> bytes: ...

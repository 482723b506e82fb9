package server

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Renewal batch format, version 1, the body of POST /internal/v1/renew and
// of its answer: magic "ARNW", version byte 1, uvarint count, then count
// session ids as 8 bytes big endian. A member sends the sessions its
// clients renewed since its last batch; the leader answers with the ones it
// did not renew (expired, unknown or being expired).
const (
	renewMagic   = "ARNW"
	renewVersion = 1
	// maxRenewBody bounds a batch: a million sessions.
	maxRenewBody = 8<<20 + 16
)

var errBadRenewal = errors.New("server: bad renewal batch")

func encodeRenewal(ids []uint64) []byte {
	b := make([]byte, 0, len(renewMagic)+1+binary.MaxVarintLen64+8*len(ids))
	b = append(b, renewMagic...)
	b = append(b, renewVersion)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	return b
}

// decodeRenewal never panics; malformed input wraps errBadRenewal.
func decodeRenewal(b []byte) ([]uint64, error) {
	if len(b) < len(renewMagic)+1 || string(b[:len(renewMagic)]) != renewMagic {
		return nil, fmt.Errorf("%w: not a renewal batch", errBadRenewal)
	}
	if v := b[len(renewMagic)]; v != renewVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errBadRenewal, v)
	}
	b = b[len(renewMagic)+1:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: bad count", errBadRenewal)
	}
	b = b[k:]
	if n != uint64(len(b))/8 || len(b)%8 != 0 {
		return nil, fmt.Errorf("%w: count %d does not match %d bytes of ids", errBadRenewal, n, len(b))
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	return ids, nil
}

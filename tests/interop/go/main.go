// tstparse parses an RFC 3161 TimeStampResp (or a bare token, a CMS ContentInfo)
// with nothing but Go's standard library (encoding/asn1) and prints what it found
// as JSON: ContentInfo -> SignedData -> encapsulated TSTInfo and each SignerInfo with
// its signed attributes. It verifies nothing; tests/interop_go.rs compares the
// output with what frostamp knows about the token.
//
// With -cert, it parses a DER certificate with crypto/x509 (x509.ParseCertificate)
// and prints its public key algorithm, key, subject and extended key usages.
//
// Usage: tstparse FILE | tstparse -cert FILE
// (exit status 1 and the Go error on stderr if parsing fails)
package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

// RFC 3161 §2.4.2.
type pkiStatusInfo struct {
	Status       int
	StatusString []string       `asn1:"optional,utf8"`
	FailInfo     asn1.BitString `asn1:"optional"`
}

type timeStampResp struct {
	Status pkiStatusInfo
	Token  asn1.RawValue `asn1:"optional"`
}

// RFC 5652 §3.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

// RFC 5652 §5.2.
type encapsulatedContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,optional,tag:0"`
}

// RFC 5652 §5.1.
type signedData struct {
	Version          int
	DigestAlgorithms []algorithmIdentifier `asn1:"set"`
	EncapContentInfo encapsulatedContentInfo
	Certificates     []asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue   `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo    `asn1:"set"`
}

// RFC 5652 §5.3.
type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    algorithmIdentifier
	SignedAttrs        []attribute `asn1:"optional,tag:0"`
	SignatureAlgorithm algorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

// RFC 3161 §2.4.2.
type messageImprint struct {
	HashAlgorithm algorithmIdentifier
	HashedMessage []byte
}

type accuracy struct {
	Seconds int `asn1:"optional"`
	Millis  int `asn1:"optional,tag:0"`
	Micros  int `asn1:"optional,tag:1"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
	// encoding/asn1 parses a GeneralizedTime into time.Time only without a fraction
	// ("time did not serialize back to the original value"); frostamp's genTime may
	// carry milliseconds (RFC 3161 allows it), so read the text and parse it here.
	GenTime    asn1.RawValue
	Accuracy   accuracy      `asn1:"optional"`
	Ordering   bool          `asn1:"optional"`
	Nonce      *big.Int      `asn1:"optional"`
	TSA        asn1.RawValue `asn1:"optional,explicit,tag:0"`
	Extensions asn1.RawValue `asn1:"optional,tag:1"`
}

type outAttr struct {
	Type   string   `json:"type"`
	Values []string `json:"values_hex"`
}

type outSigner struct {
	Version            int       `json:"version"`
	DigestAlgorithm    string    `json:"digest_algorithm"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	SignatureLen       int       `json:"signature_len"`
	SignedAttrs        []outAttr `json:"signed_attrs"`
	// The content-type attribute's value and the message digest, decoded.
	ContentType   string `json:"content_type_attr"`
	MessageDigest string `json:"message_digest_hex"`
}

type outTST struct {
	Version      int    `json:"version"`
	Policy       string `json:"policy"`
	HashOID      string `json:"hash_oid"`
	Imprint      string `json:"imprint_hex"`
	Serial       string `json:"serial_hex"`
	GenTime      string `json:"gen_time"`
	GenTimeNanos int64  `json:"gen_time_unix_nanos"`
	AccuracySecs int    `json:"accuracy_seconds"`
	Ordering     bool   `json:"ordering"`
	Nonce        string `json:"nonce_hex,omitempty"`
	HasTSA       bool   `json:"has_tsa"`
}

type output struct {
	Status           *int        `json:"status,omitempty"`
	ContentType      string      `json:"content_type"`
	Version          int         `json:"signed_data_version"`
	DigestAlgorithms []string    `json:"digest_algorithms"`
	EContentType     string      `json:"econtent_type"`
	Certificates     int         `json:"certificates"`
	TSTInfo          outTST      `json:"tst_info"`
	Signers          []outSigner `json:"signers"`
}

var (
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
)

// strict decodes one DER element into v and refuses trailing bytes.
func strict(der []byte, v interface{}, what string) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%s: %d trailing bytes", what, len(rest))
	}
	return nil
}

func parse(der []byte) (*output, error) {
	out := &output{}
	token := der
	// A TimeStampResp starts with a SEQUENCE (PKIStatusInfo); a ContentInfo with an OID.
	var probe asn1.RawValue
	if err := strict(der, &probe, "outer SEQUENCE"); err != nil {
		return nil, err
	}
	var first asn1.RawValue
	if _, err := asn1.Unmarshal(probe.Bytes, &first); err != nil {
		return nil, fmt.Errorf("first element: %w", err)
	}
	if first.Tag == asn1.TagSequence {
		var resp timeStampResp
		if err := strict(der, &resp, "TimeStampResp"); err != nil {
			return nil, err
		}
		status := resp.Status.Status
		out.Status = &status
		if len(resp.Token.FullBytes) == 0 {
			return nil, errors.New("TimeStampResp without a token")
		}
		token = resp.Token.FullBytes
	}
	var ci contentInfo
	if err := strict(token, &ci, "ContentInfo"); err != nil {
		return nil, err
	}
	out.ContentType = ci.ContentType.String()
	var sd signedData
	if err := strict(ci.Content.Bytes, &sd, "SignedData"); err != nil {
		return nil, err
	}
	out.Version = sd.Version
	for _, a := range sd.DigestAlgorithms {
		out.DigestAlgorithms = append(out.DigestAlgorithms, a.Algorithm.String())
	}
	out.EContentType = sd.EncapContentInfo.EContentType.String()
	out.Certificates = len(sd.Certificates)
	var tst tstInfo
	if err := strict(sd.EncapContentInfo.EContent, &tst, "TSTInfo"); err != nil {
		return nil, err
	}
	if tst.GenTime.Class != asn1.ClassUniversal || tst.GenTime.Tag != asn1.TagGeneralizedTime {
		return nil, errors.New("TSTInfo: genTime is not a GeneralizedTime")
	}
	genTime, err := time.Parse("20060102150405.999Z", string(tst.GenTime.Bytes))
	if err != nil {
		return nil, fmt.Errorf("TSTInfo: genTime: %w", err)
	}
	out.TSTInfo = outTST{
		Version:      tst.Version,
		Policy:       tst.Policy.String(),
		HashOID:      tst.MessageImprint.HashAlgorithm.Algorithm.String(),
		Imprint:      hex.EncodeToString(tst.MessageImprint.HashedMessage),
		Serial:       tst.SerialNumber.Text(16),
		GenTime:      string(tst.GenTime.Bytes),
		GenTimeNanos: genTime.UnixNano(),
		AccuracySecs: tst.Accuracy.Seconds,
		Ordering:     tst.Ordering,
		HasTSA:       len(tst.TSA.FullBytes) != 0,
	}
	if tst.Nonce != nil {
		out.TSTInfo.Nonce = tst.Nonce.Text(16)
	}
	for i, si := range sd.SignerInfos {
		s := outSigner{
			Version:            si.Version,
			DigestAlgorithm:    si.DigestAlgorithm.Algorithm.String(),
			SignatureAlgorithm: si.SignatureAlgorithm.Algorithm.String(),
			SignatureLen:       len(si.Signature),
		}
		for _, a := range si.SignedAttrs {
			oa := outAttr{Type: a.Type.String()}
			for _, v := range a.Values {
				oa.Values = append(oa.Values, hex.EncodeToString(v.FullBytes))
			}
			s.SignedAttrs = append(s.SignedAttrs, oa)
			if len(a.Values) != 1 {
				continue
			}
			switch {
			case a.Type.Equal(oidContentType):
				var ct asn1.ObjectIdentifier
				if err := strict(a.Values[0].FullBytes, &ct, fmt.Sprintf("signer %d content-type", i)); err != nil {
					return nil, err
				}
				s.ContentType = ct.String()
			case a.Type.Equal(oidMessageDigest):
				var md []byte
				if err := strict(a.Values[0].FullBytes, &md, fmt.Sprintf("signer %d message-digest", i)); err != nil {
					return nil, err
				}
				s.MessageDigest = hex.EncodeToString(md)
			}
		}
		out.Signers = append(out.Signers, s)
	}
	return out, nil
}

// What x509.ParseCertificate made of a certificate.
type certOutput struct {
	PublicKeyAlgorithm string `json:"public_key_algorithm"`
	Ed25519KeyHex      string `json:"ed25519_key_hex,omitempty"`
	Subject            string `json:"subject"`
	TimeStamping       bool   `json:"ext_key_usage_time_stamping"`
	IsCA               bool   `json:"is_ca"`
}

func parseCert(der []byte) (*certOutput, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	out := &certOutput{
		PublicKeyAlgorithm: c.PublicKeyAlgorithm.String(),
		Subject:            c.Subject.String(),
		IsCA:               c.IsCA,
	}
	if k, ok := c.PublicKey.(ed25519.PublicKey); ok {
		out.Ed25519KeyHex = hex.EncodeToString(k)
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageTimeStamping {
			out.TimeStamping = true
		}
	}
	return out, nil
}

func main() {
	cert := len(os.Args) == 3 && os.Args[1] == "-cert"
	if len(os.Args) != 2 && !cert {
		fmt.Fprintln(os.Stderr, "usage: tstparse FILE | tstparse -cert FILE")
		os.Exit(2)
	}
	der, err := os.ReadFile(os.Args[len(os.Args)-1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var out interface{}
	if cert {
		out, err = parseCert(der)
	} else {
		out, err = parse(der)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

#!/usr/bin/env bash
# Makes a throwaway OpenSSL timestamp authority in the directory given, for Cairn's RFC 3161
# interop tests (spec/tests/timestamp_openssl.rs) and for trying `openssl ts` by hand:
#
#   root.key, root.pem          a P-256 root CA (basicConstraints critical cA, keyCertSign)
#   tsa-rsa.{key,pem}           RSA-2048 TSA certificate issued by the root
#   tsa-p256.{key,pem}          ECDSA P-256 TSA certificate issued by the root
#   tsa-ed25519.{key,pem}       Ed25519 TSA certificate issued by the root
#   openssl-ts.cnf              one `openssl ts -reply` section per TSA and option set
#   ed25519.supported           present if this `openssl ts` can sign with Ed25519;
#   ed25519.unsupported         otherwise, holding openssl's refusal
#
# Every TSA certificate has the critical extendedKeyUsage id-kp-timeStamping that RFC 3161
# §2.3 requires. Certificates are valid from now for ten years.
#
# Usage: make-openssl-tsa.sh DIR
#   then: openssl ts -reply -config DIR/openssl-ts.cnf -section tsa_p256 \
#             -queryfile request.tsq -out response.tsr
set -euo pipefail

dir=${1:?usage: make-openssl-tsa.sh DIR}
mkdir -p "$dir"
cd "$dir"
dir=$(pwd)

cat > x509.cnf <<'EOF'
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
O = Cairn Interop
CN = OpenSSL Test Root
[ v3_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_tsa ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key
openssl req -x509 -new -key root.key -config x509.cnf -extensions v3_root \
    -set_serial 0x5eed01 -days 3650 -out root.pem

make_tsa() {
    local name=$1
    shift
    openssl genpkey -quiet "$@" -out "tsa-$name.key"
    openssl req -new -key "tsa-$name.key" -subj "/O=Cairn Interop/CN=OpenSSL Test TSA $name" \
        -out "tsa-$name.csr"
    openssl x509 -req -in "tsa-$name.csr" -CA root.pem -CAkey root.key \
        -set_serial "0x$(openssl rand -hex 8)" -days 3650 \
        -extfile x509.cnf -extensions v3_tsa -out "tsa-$name.pem" 2>/dev/null
    rm "tsa-$name.csr"
}
make_tsa rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
make_tsa p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
make_tsa ed25519 -algorithm ED25519

echo 01 > serial

# One section per TSA and set of options. Common to all: the policy Cairn's tests expect, the
# digests a request may use, an accuracy, millisecond genTime and the TSA name.
section() {
    local name=$1 key=$2 digest=$3 ess=$4 chain=$5
    cat <<EOF
[ $name ]
dir = $dir
serial = \$dir/serial
crypto_device = builtin
signer_cert = \$dir/tsa-$key.pem
signer_key = \$dir/tsa-$key.key
signer_digest = $digest
ess_cert_id_alg = $ess
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 3
ordering = no
tsa_name = yes
EOF
    if [ "$chain" = yes ]; then
        printf 'certs = $dir/root.pem\ness_cert_id_chain = yes\n'
    else
        printf 'ess_cert_id_chain = no\n'
    fi
    echo
}
{
    printf '[ tsa ]\ndefault_tsa = tsa_p256\n\n'
    # ESSCertIDv2 (SHA-256), signer and root in the token.
    section tsa_rsa rsa sha256 sha256 yes
    section tsa_p256 p256 sha256 sha256 yes
    # ESSCertID v1 (SHA-1), larger digests, signer certificate only.
    section tsa_rsa_sha512 rsa sha512 sha1 no
    section tsa_p256_sha384 p256 sha384 sha1 no
    section tsa_ed25519 ed25519 sha512 sha256 no
} > openssl-ts.cnf

# OpenSSL 3.0 signs timestamps through PKCS#7, which has no Ed25519: find out. A TSA that
# cannot sign still exits 0, with a rejection response, so the status is what tells.
rm -f ed25519.supported ed25519.unsupported
printf 'probe\n' > probe.txt
openssl ts -query -data probe.txt -sha256 -cert -out probe.tsq 2>/dev/null
refusal=$(openssl ts -reply -config openssl-ts.cnf -section tsa_ed25519 \
    -queryfile probe.tsq -out probe.tsr 2>&1 || true)
if openssl ts -reply -in probe.tsr -text 2>/dev/null | grep -q '^Status: Granted'; then
    touch ed25519.supported
else
    printf '%s\n' "$refusal" > ed25519.unsupported
fi
echo 01 > serial
rm -f probe.txt probe.tsq probe.tsr

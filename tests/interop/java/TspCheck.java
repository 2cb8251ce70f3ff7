// Bouncy Castle's RFC 3161 check of a frostamp token (tests/interop_java.rs, issue 14).
//
// Usage (class path: bcprov.jar, bcutil.jar, bcpkix.jar and this class):
//   TspCheck extract SIGNED.jar OUT
//     writes the timestamp token of the JAR's signature block (META-INF/*.EC, *.RSA,
//     *.DSA; the SignerInfo's id-aa-signatureTimeStampToken attribute) to OUT and
//     prints "imprint_hex: H", H being the digest of that SignerInfo's signature
//     under the token's messageImprint algorithm: what the token must be for.
//   TspCheck check TOKEN ROOT.pem IMPRINT_HEX
//     TOKEN is a TimeStampResp or a bare token (ContentInfo with SignedData), DER.
// `check` verifies, with Bouncy Castle only:
//   1. the response status is granted (a bare token has none);
//   2. the TSTInfo's messageImprint is IMPRINT_HEX;
//   3. TimeStampToken.validate with a JcaSimpleSignerInfoVerifierBuilder for the TSA
//      certificate carried in the token: the certificate is the one named by the
//      signingCertificate(V2) attribute, it was valid at genTime and has the critical
//      id-kp-timeStamping extended key usage, and the SignerInfo's signature over the
//      signed attributes verifies (and the messageDigest attribute is the digest of
//      the TSTInfo);
//   4. PKIX (RFC 5280) from the TSA certificate to ROOT, the only trust anchor, at
//      genTime, through any other certificates the token carries; revocation is not
//      checked (no CRL is given).
// Prints what it found as "key: value" lines. Exit status 0 = valid, 1 = refused
// (the reason on stderr, first line "REFUSED <step>: <exception>"), 2 = usage or I/O.

import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.Security;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.bouncycastle.asn1.cms.Attribute;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.tsp.TimeStampResponse;
import org.bouncycastle.tsp.TimeStampToken;
import org.bouncycastle.tsp.TimeStampTokenInfo;

public final class TspCheck {
    private static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;

        Refused(String step, Throwable cause) {
            super(step + ": " + cause, cause);
        }

        Refused(String step, String why) {
            super(step + ": " + why);
        }
    }

    public static void main(String[] args) {
        Security.addProvider(new BouncyCastleProvider());
        if (args.length == 3 && args[0].equals("extract")) {
            try {
                extract(Path.of(args[1]), Path.of(args[2]));
            } catch (Exception e) {
                System.err.println("cannot extract the timestamp token: " + e);
                System.exit(1);
            }
            return;
        }
        if (args.length != 4 || !args[0].equals("check")) {
            System.err.println("usage: TspCheck extract SIGNED.jar OUT | check TOKEN ROOT.pem IMPRINT_HEX");
            System.exit(2);
        }
        byte[] der;
        X509Certificate root;
        try {
            der = Files.readAllBytes(Path.of(args[1]));
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            root = (X509Certificate) cf.generateCertificate(
                    new ByteArrayInputStream(Files.readAllBytes(Path.of(args[2]))));
        } catch (Exception e) {
            System.err.println("cannot read input: " + e);
            System.exit(2);
            return;
        }
        try {
            check(der, root, HexFormat.of().parseHex(args[3]));
        } catch (Refused e) {
            System.err.println("REFUSED " + e.getMessage());
            System.exit(1);
        }
        System.out.println("result: valid");
    }

    private static void check(byte[] der, X509Certificate root, byte[] imprint) throws Refused {
        TimeStampToken token;
        try {
            token = parse(der);
        } catch (Refused e) {
            throw e;
        } catch (Exception e) {
            throw new Refused("parse", e);
        }
        TimeStampTokenInfo info = token.getTimeStampInfo();
        SignerInformation signer = token.toCMSSignedData().getSignerInfos().getSigners()
                .iterator().next();
        System.out.println("gen_time_ms: " + info.getGenTime().getTime());
        System.out.println("serial_hex: " + info.getSerialNumber().toString(16));
        System.out.println("policy: " + info.getPolicy().getId());
        System.out.println("imprint_alg: " + info.getMessageImprintAlgOID().getId());
        System.out.println("imprint_hex: " + HexFormat.of().formatHex(info.getMessageImprintDigest()));
        System.out.println("signer_digest_alg: " + signer.getDigestAlgOID());
        System.out.println("signer_signature_alg: " + signer.getEncryptionAlgOID());

        if (!java.util.Arrays.equals(info.getMessageImprintDigest(), imprint)) {
            throw new Refused("imprint", "the token is for another digest");
        }

        @SuppressWarnings("unchecked")
        Collection<X509CertificateHolder> found = token.getCertificates().getMatches(token.getSID());
        if (found.size() != 1) {
            throw new Refused("certificate", found.size() + " certificates match the SignerInfo");
        }
        X509CertificateHolder tsa = found.iterator().next();
        System.out.println("tsa_subject: " + tsa.getSubject());

        try {
            token.validate(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(tsa));
        } catch (Exception e) {
            throw new Refused("validate", e);
        }
        System.out.println("signature: valid");

        try {
            JcaX509CertificateConverter conv = new JcaX509CertificateConverter().setProvider("BC");
            List<X509Certificate> path = new ArrayList<>();
            path.add(conv.getCertificate(tsa));
            @SuppressWarnings("unchecked")
            Collection<X509CertificateHolder> all = token.getCertificates().getMatches(null);
            for (X509CertificateHolder c : all) {
                if (!c.equals(tsa) && !c.getSubject().equals(c.getIssuer())) {
                    path.add(conv.getCertificate(c));
                }
            }
            CertPath certPath = CertificateFactory.getInstance("X.509", "BC").generateCertPath(path);
            PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
            params.setRevocationEnabled(false);
            params.setDate(info.getGenTime());
            CertPathValidator.getInstance("PKIX", "BC").validate(certPath, params);
        } catch (Exception e) {
            throw new Refused("path", e);
        }
        System.out.println("path: valid to " + root.getSubjectX500Principal().getName());
    }

    private static void extract(Path jar, Path out) throws Exception {
        byte[] block = null;
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            for (ZipEntry e : java.util.Collections.list(zip.entries())) {
                String n = e.getName();
                if (n.startsWith("META-INF/") && n.indexOf('/', 9) < 0
                        && (n.endsWith(".EC") || n.endsWith(".RSA") || n.endsWith(".DSA"))) {
                    if (block != null) {
                        throw new IllegalStateException("more than one signature block");
                    }
                    block = zip.getInputStream(e).readAllBytes();
                }
            }
        }
        if (block == null) {
            throw new IllegalStateException("no signature block in " + jar);
        }
        SignerInformation si = new CMSSignedData(block).getSignerInfos().getSigners().iterator().next();
        if (si.getUnsignedAttributes() == null) {
            throw new IllegalStateException("the signature has no unsigned attributes");
        }
        Attribute attr = si.getUnsignedAttributes()
                .get(PKCSObjectIdentifiers.id_aa_signatureTimeStampToken);
        if (attr == null) {
            throw new IllegalStateException("the signature has no timestamp token");
        }
        byte[] token = attr.getAttrValues().getObjectAt(0).toASN1Primitive().getEncoded("DER");
        TimeStampToken tst = new TimeStampToken(ContentInfo.getInstance(token));
        String alg = tst.getTimeStampInfo().getMessageImprintAlgOID().getId();
        byte[] imprint = MessageDigest.getInstance(alg, "BC").digest(si.getSignature());
        Files.write(out, token);
        System.out.println("imprint_hex: " + HexFormat.of().formatHex(imprint));
    }

    private static TimeStampToken parse(byte[] der) throws Exception {
        try {
            TimeStampResponse resp = new TimeStampResponse(der);
            if (resp.getStatus() > 1) {
                throw new Refused("status", "status " + resp.getStatus() + ": " + resp.getStatusString());
            }
            if (resp.getTimeStampToken() == null) {
                throw new Refused("status", "no token in the response");
            }
            return resp.getTimeStampToken();
        } catch (Refused e) {
            throw e;
        } catch (Exception notAResponse) {
            return new TimeStampToken(ContentInfo.getInstance(der));
        }
    }
}

// Interop peer for tests/public_tls.rs: Java's own TLS client (JDK from Debian)
// fetches URL over HTTPS with its default trust manager and hostname verifier,
// trusting what -Djavax.net.ssl.trustStore names (a PKCS#12 truststore made with
// keytool from the cluster's root). Nothing in here switches verification off.
//
//   java -Djavax.net.ssl.trustStore=T -Djavax.net.ssl.trustStorePassword=P TlsCheck URL
//
// Prints the HTTP status, the TLS protocol and the server's certificate subject, then
// the body; exit 1 with the exception on any failure (e.g. PKIX path building failed).
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import javax.net.ssl.HttpsURLConnection;

public class TlsCheck {
    public static void main(String[] args) {
        try {
            HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
            c.setConnectTimeout(10000);
            c.setReadTimeout(10000);
            c.connect();
            X509Certificate leaf = (X509Certificate) c.getServerCertificates()[0];
            String suite = c.getCipherSuite();
            int status = c.getResponseCode();
            String body;
            try (InputStream in = c.getInputStream()) {
                body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            System.out.println("status " + status);
            System.out.println("suite " + suite);
            System.out.println("subject " + leaf.getSubjectX500Principal().getName());
            System.out.println(body);
        } catch (Exception e) {
            System.out.println("failed " + e);
            System.exit(1);
        }
    }
}

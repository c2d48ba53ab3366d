package synapse.testing;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * Starts a Neo4j Community DBMS for the test suite and keeps it up until its standard input
 * closes (or SIGTERM).
 *
 * <pre>
 *   NEO4J_LAUNCHER_PASSWORD=secret-pw java -cp ... synapse.testing.Neo4jLauncher HOME [PORT]
 * </pre>
 *
 * HOME is the DBMS's home directory (data, logs; a {@code neo4j.conf} there is read first).
 * PORT is the Bolt port on 127.0.0.1, 0 (the default) for a free one. The password comes from
 * the environment, never the command line (which every user can read); on a fresh HOME it
 * becomes the {@code neo4j} user's, on a HOME used before the stored one stays.
 *
 * Prints one line {@code READY bolt=127.0.0.1:PORT version=V} when Bolt accepts logins, and
 * {@code STOPPED} after an orderly shutdown. The Bolt connector always binds 127.0.0.1 and
 * authentication is always on, whatever {@code neo4j.conf} says.
 */
public final class Neo4jLauncher {
    private static boolean stopped;

    private Neo4jLauncher() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: Neo4jLauncher HOME [PORT]   (password in NEO4J_LAUNCHER_PASSWORD)");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = args.length == 2 ? Integer.parseInt(args[1]) : 0;
        String password = System.getenv("NEO4J_LAUNCHER_PASSWORD");
        if (password == null || password.length() < 8) {
            System.err.println("NEO4J_LAUNCHER_PASSWORD must hold a password of 8 or more characters");
            System.exit(2);
        }
        Files.createDirectories(home);

        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home);
        Path conf = home.resolve("neo4j.conf");
        if (Files.exists(conf)) {
            builder.loadPropertiesFromFile(conf);
        }
        // Set after the file, so these win: loopback only, logins required.
        builder.setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(GraphDatabaseSettings.auth_enabled, true);
        DatabaseManagementService dbms = builder.build();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(dbms), "neo4j-launcher-stop"));

        GraphDatabaseAPI system = (GraphDatabaseAPI) dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        setInitialPassword(system, password);
        String version = system.executeTransactionally(
                "CALL dbms.components() YIELD versions RETURN versions[0] AS v",
                Map.of(),
                result -> String.valueOf(result.next().get("v")));
        var bolt = system.getDependencyResolver()
                .resolveDependency(ConnectorPortRegister.class)
                .getLocalAddress(ConnectorType.BOLT);
        System.out.println("READY bolt=" + bolt.getHost() + ":" + bolt.getPort() + " version=" + version);
        System.out.flush();

        waitForEndOfInput(System.in);
        stop(dbms);
        System.exit(0);
    }

    /** A fresh DBMS has user neo4j/neo4j with a change required: give it the password. */
    private static void setInitialPassword(GraphDatabaseAPI system, String password) {
        boolean fresh = system.executeTransactionally(
                "SHOW USERS YIELD user, passwordChangeRequired WHERE user = 'neo4j' "
                        + "RETURN passwordChangeRequired AS fresh",
                Map.of(),
                result -> result.hasNext() && Boolean.TRUE.equals(result.next().get("fresh")));
        if (fresh) {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        }
    }

    private static void waitForEndOfInput(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // Input is ignored; only its end matters.
            }
        } catch (IOException e) {
            // A broken pipe is an end too.
        }
    }

    /** Shuts down once; a second caller (SIGTERM during an EOF stop) waits for the first. */
    private static synchronized void stop(DatabaseManagementService dbms) {
        if (!stopped) {
            stopped = true;
            dbms.shutdown();
            System.out.println("STOPPED");
            System.out.flush();
        }
    }
}

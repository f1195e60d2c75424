import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.serialization.*;

/** args: bootstrap protocol mechanism user password [PEM CA file]. Produces and consumes
 *  200 records with SASL (and TLS), then checks that a wrong password is refused. */
public class SaslInterop {
    static Properties security(String[] args, String password) {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("security.protocol", args[1]);
        p.put("sasl.mechanism", args[2]);
        String module = args[2].equals("PLAIN") ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                                                : "org.apache.kafka.common.security.scram.ScramLoginModule";
        p.put("sasl.jaas.config", module + " required username=\"" + args[3] + "\" password=\"" + password + "\";");
        if (args.length > 5) {
            p.put("ssl.truststore.type", "PEM");
            p.put("ssl.truststore.location", args[5]);
        }
        return p;
    }

    public static void main(String[] args) throws Exception {
        String topic = "java-sasl-" + args[1].toLowerCase() + "-" + System.nanoTime();
        int n = 200;
        try (Admin admin = Admin.create(security(args, args[4]))) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 2))).all().get();
            System.out.println("cluster: " + admin.describeCluster().nodes().get().size() + " brokers");
        }
        Properties pp = security(args, args[4]);
        pp.put("acks", "all");
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < n; i++) p.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get();
        }
        Properties cp = security(args, args[4]);
        cp.put("group.id", "jsg-" + System.nanoTime());
        cp.put("auto.offset.reset", "earliest");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 60000;
            while (seen.size() < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) seen.add(r.value());
            }
            c.commitSync();
        }
        System.out.println("consumed " + seen.size() + " of " + n);
        Properties bad = security(args, "not-" + args[4]);
        bad.put("default.api.timeout.ms", "15000");
        bad.put("request.timeout.ms", "10000");
        try (Admin admin = Admin.create(bad)) {
            admin.listTopics().names().get();
            System.out.println("wrong password: accepted");
        } catch (java.util.concurrent.ExecutionException e) {
            System.out.println("wrong password: " + e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage());
        }
        System.exit(seen.size() == n ? 0 : 1);
    }
}

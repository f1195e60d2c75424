import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.serialization.*;

public class Interop {
    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String topic = "java-" + System.nanoTime();
        int n = 5000;
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 3).configs(Map.of("min.insync.replicas", "2")))).all().get();
            System.out.println("topics: " + admin.listTopics().names().get().contains(topic));
            var desc = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            System.out.println("partitions: " + desc.partitions().size() + " isr0: " + desc.partitions().get(0).isr().size());
        }
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bs);
        pp.put("acks", "all");
        pp.put("enable.idempotence", "true");
        pp.put("compression.type", args.length > 1 ? args[1] : "zstd");
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < n; i++) p.send(new ProducerRecord<>(topic, "k" + i, "v" + i));
            p.flush();
            System.out.println("produced " + n);
        }
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("group.id", "jg-" + System.nanoTime());
        cp.put("auto.offset.reset", "earliest");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30000;
            while (seen.size() < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) seen.add(r.value());
            }
            c.commitSync();
        }
        System.out.println("consumed " + seen.size() + " of " + n);
        System.exit(seen.size() == n ? 0 : 1);
    }
}

import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

/** KIP-848 with the Java client: three consumers with group.protocol=consumer share six
 *  partitions 2/2/2, read every record once, commit, and two take over the third's
 *  partitions when it closes. Each consumer polls on its own thread. */
public class ConsumerProtocol {
    static final Map<Integer, Set<Integer>> assigned = new ConcurrentHashMap<>();
    static final Set<String> seen = ConcurrentHashMap.newKeySet();
    static final List<String> duplicates = Collections.synchronizedList(new ArrayList<>());

    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String topic = "jkip848-" + System.nanoTime();
        String group = "jg848-" + System.nanoTime();
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 6, (short) 1))).all().get();
        }
        AtomicFlags flags = new AtomicFlags(3);
        ExecutorService pool = Executors.newFixedThreadPool(3, r -> { Thread t = new Thread(r); t.setDaemon(true); return t; });
        List<Future<?>> runs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            final int id = i;
            runs.add(pool.submit(() -> { member(bs, group, topic, id, flags); return null; }));
        }
        long deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline && !balanced(3)) Thread.sleep(50);
        System.out.println("balanced: " + balanced(3) + " " + new TreeMap<>(assigned));
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bs);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 600; i++) p.send(new ProducerRecord<>(topic, i % 6, null, "v" + i));
            p.flush();
        }
        deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline && seen.size() < 600) Thread.sleep(50);
        System.out.println("consumed: " + seen.size() + " duplicates " + duplicates.size());
        flags.stop[0] = true;                                   // member 0 commits and closes
        runs.get(0).get(60, TimeUnit.SECONDS);
        assigned.remove(0);
        deadline = System.currentTimeMillis() + 60000;
        while (System.currentTimeMillis() < deadline && owned() != 6) Thread.sleep(50);
        System.out.println("taken over: " + (owned() == 6) + " " + new TreeMap<>(assigned));
        flags.stop[1] = flags.stop[2] = true;
        for (Future<?> f : runs) f.get(60, TimeUnit.SECONDS);
        pool.shutdown();
        try (Admin admin = Admin.create(ap)) {
            long sum = 0;
            for (var e : admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().values()) sum += e.offset();
            System.out.println("committed: " + sum);
            var d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            System.out.println("type: " + d.type());
        }
    }

    static int owned() { int n = 0; for (Set<Integer> s : assigned.values()) n += s.size(); return n; }

    static boolean balanced(int members) {
        if (assigned.size() != members) return false;
        for (Set<Integer> s : assigned.values()) if (s.size() != 6 / members) return false;
        return owned() == 6;
    }

    static final class AtomicFlags { final boolean[] stop; AtomicFlags(int n) { stop = new boolean[n]; } }

    static void member(String bs, String group, String topic, int id, AtomicFlags flags) {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("group.id", group);
        cp.put("group.protocol", "consumer");
        cp.put("client.id", "java848-" + id);
        cp.put("auto.offset.reset", "earliest");
        cp.put("enable.auto.commit", "false");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            while (!flags.stop[id]) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                    if (!seen.add(r.value())) duplicates.add(r.value());
                }
                Set<Integer> mine = new TreeSet<>();
                for (TopicPartition tp : c.assignment()) mine.add(tp.partition());
                assigned.put(id, mine);
                c.commitSync();
            }
        } catch (RuntimeException e) {
            // Printed, so a failed run says what stopped this member.
            System.out.println("member " + id + " failed: " + e);
            throw e;
        }
    }
}

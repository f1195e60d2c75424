import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.*;

/** KIP-932 with the Java client: three KafkaShareConsumers of one share group on a
 *  one-partition topic, explicit acknowledgement. Every record is ACCEPTed once, except
 *  that "v7" is RELEASEd on its first delivery (it must come back with delivery count 2)
 *  and "v13" is REJECTed (it must never come back). Then the admin client describes the
 *  group and lists its share-partition start offset. */
public class ShareInterop {
    static final int RECORDS = 300;
    static final Set<String> accepted = ConcurrentHashMap.newKeySet();
    static final Map<Integer, AtomicInteger> perConsumer = new ConcurrentHashMap<>();
    static final AtomicInteger duplicates = new AtomicInteger();
    static final AtomicInteger rejectedAgain = new AtomicInteger();
    static final AtomicInteger releasedCount = new AtomicInteger(-1);
    static volatile boolean stop;

    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String topic = "jshare-" + System.nanoTime();
        String group = "jsg-" + System.nanoTime();
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET)))).all().get();
        }
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bs);
        pp.put("linger.ms", "0");
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        ExecutorService pool = Executors.newFixedThreadPool(3, r -> { Thread t = new Thread(r); t.setDaemon(true); return t; });
        List<Future<?>> runs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            final int id = i;
            perConsumer.put(id, new AtomicInteger());
            runs.add(pool.submit(() -> { member(bs, group, topic, id); return null; }));
        }
        try (Admin admin = Admin.create(ap)) {
            long deadline = System.currentTimeMillis() + 60000;
            while (System.currentTimeMillis() < deadline) {
                try {
                    var d = admin.describeShareGroups(List.of(group)).all().get().get(group);
                    if (d.members().size() == 3) break;
                } catch (ExecutionException e) {
                    // GROUP_ID_NOT_FOUND until the first member's heartbeat creates the group
                }
                Thread.sleep(100);
            }
        }
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < RECORDS; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, "v" + i));
                if (i % 10 == 9) { p.flush(); Thread.sleep(20); }
            }
            p.flush();
        }
        long deadline = System.currentTimeMillis() + 90000;
        while (System.currentTimeMillis() < deadline && accepted.size() < RECORDS - 1) Thread.sleep(50);
        Thread.sleep(1000);  // a REJECTed record coming back would arrive by now
        stop = true;
        for (Future<?> f : runs) f.get(60, TimeUnit.SECONDS);
        pool.shutdown();
        int busy = 0;
        for (AtomicInteger n : perConsumer.values()) if (n.get() > 0) busy++;
        System.out.println("accepted: " + accepted.size() + " duplicates " + duplicates.get());
        System.out.println("released came back with delivery count " + releasedCount.get());
        System.out.println("rejected came back: " + rejectedAgain.get());
        System.out.println("consumers with records: " + busy + " " + perConsumer);
        try (Admin admin = Admin.create(ap)) {
            var d = admin.describeShareGroups(List.of(group)).all().get().get(group);
            System.out.println("group state: " + d.groupState() + " members " + d.members().size());
            var offsets = admin.listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec()))
                .partitionsToOffsetInfo(group).get();
            var start = offsets.get(new TopicPartition(topic, 0));
            System.out.println("start offset: " + (start == null ? "none" : start.startOffset())
                + " lag " + (start == null ? "none" : start.lag().map(String::valueOf).orElse("none")));
        }
    }

    static void member(String bs, String group, String topic, int id) {
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("group.id", group);
        cp.put("share.acknowledgement.mode", "explicit");
        cp.put("max.poll.records", "10");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaShareConsumer<String, String> c = new KafkaShareConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            while (!stop) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : records) {
                    perConsumer.get(id).incrementAndGet();
                    short count = r.deliveryCount().orElse((short) 0);
                    if (r.value().equals("v13")) {
                        if (count > 1) rejectedAgain.incrementAndGet();
                        c.acknowledge(r, AcknowledgeType.REJECT);
                    } else if (r.value().equals("v7") && count == 1) {
                        c.acknowledge(r, AcknowledgeType.RELEASE);
                    } else {
                        if (r.value().equals("v7")) releasedCount.set(count);
                        if (!accepted.add(r.value())) duplicates.incrementAndGet();
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                    }
                }
                if (!records.isEmpty()) c.commitSync();
            }
        }
    }
}

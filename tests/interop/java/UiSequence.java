import java.time.Duration;
import java.util.*;
import java.util.stream.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.*;

/** What a Kafka UI asks on start, then the cluster admin calls of Kafka 4's tools: every
 *  step prints one line; any exception fails the run (exit code 1). */
public class UiSequence {
    public static void main(String[] args) throws Exception {
        String bs = args[0];
        String topic = "ui-" + System.nanoTime();
        String group = "ui-group-" + System.nanoTime();
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bs);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 3))).all().get();
            produceAndConsume(bs, topic, group);

            DescribeClusterResult cluster = admin.describeCluster();
            Collection<Node> nodes = cluster.nodes().get();
            System.out.println("cluster: " + cluster.clusterId().get() + " controller " + cluster.controller().get().id()
                + " brokers " + nodes.stream().map(Node::id).sorted().collect(Collectors.toList()));

            Set<String> names = admin.listTopics().names().get();
            System.out.println("listTopics: " + names.contains(topic));

            TopicDescription td = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            System.out.println("describeTopics: partitions " + td.partitions().size() + " replicas "
                + td.partitions().get(0).replicas().size() + " elr " + td.partitions().get(0).elr());

            List<Integer> ids = nodes.stream().map(Node::id).sorted().collect(Collectors.toList());
            Map<Integer, Map<String, LogDirDescription>> dirs = admin.describeLogDirs(ids).allDescriptions().get();
            long bytes = 0;
            for (Map<String, LogDirDescription> byDir : dirs.values())
                for (LogDirDescription d : byDir.values())
                    for (Map.Entry<TopicPartition, ReplicaInfo> e : d.replicaInfos().entrySet())
                        if (e.getKey().topic().equals(topic)) bytes += e.getValue().size();
            System.out.println("describeLogDirs: brokers " + dirs.size() + " topic bytes>0 " + (bytes > 0));

            List<ConfigResource> resources = new ArrayList<>();
            resources.add(new ConfigResource(ConfigResource.Type.TOPIC, topic));
            for (Integer id : ids) resources.add(new ConfigResource(ConfigResource.Type.BROKER, id.toString()));
            Map<ConfigResource, Config> configs = admin.describeConfigs(resources).all().get();
            ConfigEntry retention = configs.get(resources.get(0)).get("retention.ms");
            System.out.println("describeConfigs: " + configs.size() + " retention.ms " + retention.value() + " "
                + retention.source());

            Collection<ConsumerGroupListing> groups = admin.listConsumerGroups().all().get();
            long mine = groups.stream().filter(g -> g.groupId().equals(group)).count();
            System.out.println("listConsumerGroups: " + mine);

            ConsumerGroupDescription gd = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            System.out.println("describeConsumerGroups: " + gd.groupState() + " " + gd.type());

            Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            long total = committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            System.out.println("listConsumerGroupOffsets: " + committed.size() + " sum " + total);

            Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
            for (int p = 0; p < 3; p++) specs.put(new TopicPartition(topic, p), OffsetSpec.latest());
            long end = admin.listOffsets(specs).all().get().values().stream()
                .mapToLong(ListOffsetsResult.ListOffsetsResultInfo::offset).sum();
            specs.replaceAll((tp, s) -> OffsetSpec.maxTimestamp());
            long maxTs = admin.listOffsets(specs).all().get().values().stream()
                .mapToLong(ListOffsetsResult.ListOffsetsResultInfo::timestamp).max().orElse(-1);
            System.out.println("listOffsets: end " + end + " maxTimestamp>0 " + (maxTs > 0));

            FeatureMetadata features = admin.describeFeatures().featureMetadata().get();
            System.out.println("describeFeatures: metadata.version "
                + features.finalizedFeatures().get("metadata.version").maxVersionLevel());

            ConfigResource clusterDefault = new ConfigResource(ConfigResource.Type.BROKER, "");
            admin.incrementalAlterConfigs(Map.of(clusterDefault, List.of(new AlterConfigOp(
                new ConfigEntry("log.cleaner.backoff.ms", "20000"), AlterConfigOp.OpType.SET)))).all().get();
            ConfigEntry backoff = null;
            for (int i = 0; i < 50 && (backoff == null || !"20000".equals(backoff.value())); i++) {
                ConfigResource one = new ConfigResource(ConfigResource.Type.BROKER, ids.get(0).toString());
                backoff = admin.describeConfigs(List.of(one)).all().get().get(one).get("log.cleaner.backoff.ms");
                Thread.sleep(100);
            }
            System.out.println("dynamicDefault: " + backoff.value() + " " + backoff.source());

            Map<TopicPartition, Optional<Throwable>> elected =
                admin.electLeaders(ElectionType.PREFERRED, Set.of(new TopicPartition(topic, 0))).partitions().get();
            System.out.println("electLeaders: " + elected.get(new TopicPartition(topic, 0))
                .map(t -> t.getClass().getSimpleName()).orElse("elected"));
        }
        System.exit(0);
    }

    static void produceAndConsume(String bs, String topic, String group) {
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bs);
        pp.put("acks", "all");
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < 300; i++) p.send(new ProducerRecord<>(topic, "k" + i, "v" + i));
            p.flush();
        }
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bs);
        cp.put("group.id", group);
        cp.put("auto.offset.reset", "earliest");
        cp.put("enable.auto.commit", "false");
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        int seen = 0;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30000;
            while (seen < 300 && System.currentTimeMillis() < deadline) seen += c.poll(Duration.ofMillis(200)).count();
            c.commitSync();
        }
        System.out.println("consumed " + seen);
    }
}
